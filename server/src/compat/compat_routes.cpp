// The compatibility routes (docs/compatibility-routes.md), over the same service, auth, rate
// limit and audit as /v1. Both answer ChaosBlade's Response JSON
// {"code": int, "success": bool, "error": "...", "result": ...} (error and
// result omitted when empty; codes: chaosblade_response.cpp).
//
// ChaosBlade's server mode: GET|POST /chaosblade?cmd=<blade command line>
//   (POST may carry cmd in an application/x-www-form-urlencoded body; cmd
//   given twice is refused). The line is split into words here
//   (command_words.hpp: quotes and backslashes only, no expansion, no shell)
//   and parsed (blade_command.hpp). HTTP status 200 for every answer, as the
//   original; except 401, 403 and 429, which keep the native matrix's status
//   so that proxies and clients see a refusal as one. Any valid token may
//   call; create, destroy, prepare and revoke need the admin role and are
//   audited, as is every line that does not parse (where injection attempts
//   show). Results:
//     create     -> the uid (async: the uid of the experiment still being created;
//                   --dry-run: the plan)
//     destroy    -> the experiment object (docs/http-api.md)
//     status <uid> | status --uid <uid> -> the experiment (or preparation) object
//     status [filters] -> an array of experiment (or preparation) objects
//     prepare    -> the preparation's uid
//     revoke     -> the preparation object
//     version    -> {"version": "..."}
//   A failed create or prepare answers success false with the uid as result.
//
// Seed 004's routes, with the native matrix's HTTP status (201 created, 202
// async, 200 otherwise; errors 400, 401, 403, 404, 409, 422, 429, 503, 500):
//   POST   /api/v1/experiments        body as POST /v1/experiments ({target,
//                                     action, scope?, flags, ...}) -> result: the experiment
//   DELETE /api/v1/experiments/{uid}  [?force=true] -> result: the experiment (a body is
//                                     ignored: the record holds what destroy needs)
//   GET    /api/v1/status?type=create|destroy|prepare|revoke&uid=<uid>
//                                     -> result: the experiment (or preparation)
//   GET    /api/v1/status?[type=..][&target=][&action=][&status=][&limit=N|OFF,N][&asc=true]
//                                     -> result: an array; unknown parameters are refused
//   POST   /api/v1/preparations       {"type"|"target": "jvm", "flags": {...}}
//                                     -> result: the preparation
//   DELETE /api/v1/preparations/{uid} -> result: the preparation
#include <chrono>

#include "blade/core/model/error.hpp"
#include "blade/core/model/experiment.hpp"
#include "blade_command.hpp"
#include "build_info.hpp"
#include "chaosblade_response.hpp"
#include "command_words.hpp"
#include "compat_preparation_body.hpp"
#include "http/envelope.hpp"
#include "http/http_server.hpp"
#include "routes/experiment_request.hpp"

namespace blade::server {
namespace {

// An outcome: the native matrix's HTTP status for it, and the Response.
struct Reply {
  int status = 200;
  ChaosbladeResponse body;
};

Reply failed(RequestContext &ctx, ErrorCode code, const std::string &message,
             nlohmann::json result) {
  ctx.error_code = std::string(to_string(code));
  const Error error(code, message.empty() ? "the executor failed" : message);
  return {http_status(code), chaosblade_failure(error, std::move(result))};
}

// /chaosblade answers 200 like the original, except for refusals of the
// caller itself (no or bad token, wrong role, rate limit).
int chaosblade_http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::Unauthenticated:
    case ErrorCode::PermissionDenied:
    case ErrorCode::ResourceExhausted:
      return http_status(code);
    default:
      return 200;
  }
}

std::string cmd_param(const httplib::Request &req) {
  const auto count = req.params.count("cmd");
  if (count == 0) {
    throw Error(ErrorCode::InvalidArgument, "cmd: required (the blade command line)",
                {{"cmd", "required"}});
  }
  // One line only: what is audited is then what is run.
  if (count > 1) {
    throw Error(ErrorCode::InvalidArgument, "cmd: given more than once",
                {{"cmd", "given more than once"}});
  }
  return req.get_param_value("cmd");
}

std::vector<std::pair<std::string, std::string>> query_options(const httplib::Request &req) {
  return {req.params.begin(), req.params.end()};
}

nlohmann::json status_result(const ExperimentService &service, const StatusQuery &q) {
  if (!q.uid.empty()) {
    return q.preparations ? to_json(service.get_preparation(q.uid)) : to_json(service.get(q.uid));
  }
  nlohmann::json items = nlohmann::json::array();
  if (q.preparations) {
    for (const auto &p : service.list_preparations(q.preparation_filter).items)
      items.push_back(to_json(p));
  } else {
    for (const auto &e : service.list(q.experiments).items)
      items.push_back(to_json(e));
  }
  return items;
}

}  // namespace

void HttpServer::install_compat_routes() {
  // What success answers: the uid (/chaosblade) or the whole record (/api/v1).
  enum class Shape { Uid, Record };

  auto create = [this](const CreateRequest &request, RequestContext &ctx, Shape shape) {
    const auto start = std::chrono::steady_clock::now();
    CreateResult r = daemon_.service().create(request, ctx.caller);
    if (r.plan) return Reply{200, chaosblade_ok(*r.plan)};
    if (!request.async) metrics_.observe_create(std::chrono::steady_clock::now() - start);
    nlohmann::json result =
        shape == Shape::Uid ? nlohmann::json(r.experiment.uid) : to_json(r.experiment);
    if (r.failure) return failed(ctx, *r.failure, r.experiment.error, std::move(result));
    return Reply{request.async ? 202 : 201, chaosblade_ok(std::move(result))};
  };

  auto destroy = [this](const std::string &uid, bool force, RequestContext &ctx) {
    const auto start = std::chrono::steady_clock::now();
    DestroyResult r = daemon_.service().destroy(uid, ctx.caller, force);
    metrics_.observe_destroy(std::chrono::steady_clock::now() - start);
    if (r.failure) return failed(ctx, *r.failure, r.experiment.error, to_json(r.experiment));
    return Reply{200, chaosblade_ok(to_json(r.experiment))};
  };

  auto prepare = [this](const PrepareRequest &request, RequestContext &ctx, Shape shape) {
    Preparation p = daemon_.service().prepare(request, ctx.caller);
    nlohmann::json result = shape == Shape::Uid ? nlohmann::json(p.uid) : to_json(p);
    if (p.status == PreparationStatus::Failed)
      return failed(ctx, ErrorCode::FailedPrecondition, p.error, std::move(result));
    return Reply{201, chaosblade_ok(std::move(result))};
  };

  auto revoke = [this](const std::string &uid, RequestContext &ctx) {
    return Reply{200, chaosblade_ok(to_json(daemon_.service().revoke(uid, ctx.caller)))};
  };

  auto status = [this](const StatusQuery &query) {
    return Reply{200, chaosblade_ok(status_result(daemon_.service(), query))};
  };

  auto run_command = [=](const BladeCommand &cmd, RequestContext &ctx) {
    switch (cmd.verb) {
      case BladeVerb::Version:
        return Reply{200, chaosblade_ok({{"version", BLADE_VERSION}})};
      case BladeVerb::Status:
        return status(cmd.status);
      default:
        break;
    }
    require(ctx, Access::Admin);
    switch (cmd.verb) {
      case BladeVerb::Create:
        return create(cmd.create, ctx, Shape::Uid);
      case BladeVerb::Destroy:
        return destroy(cmd.uid, cmd.force, ctx);
      case BladeVerb::Prepare:
        return prepare(cmd.prepare, ctx, Shape::Uid);
      default:
        return revoke(cmd.uid, ctx);
    }
  };

  const auto chaosblade_error = [](httplib::Response &res, const Error &e) {
    send_chaosblade(res, chaosblade_http_status(e.code()), chaosblade_failure(e));
  };
  auto chaosblade = [this, run_command](const httplib::Request &req, httplib::Response &res,
                                        RequestContext &ctx) {
    // Audited unless it proves to be a read: a line that does not parse is
    // where an injection attempt shows.
    const bool was_mutating = ctx.mutating;
    ctx.mutating = true;
    const BladeCommand cmd = parse_blade_command(
        split_command_words(cmd_param(req)),
        [this](const std::string &scope, const std::string &target, const std::string &action) {
          return daemon_.service().flag_specs(scope, target, action);
        });
    if (cmd.verb == BladeVerb::Status || cmd.verb == BladeVerb::Version)
      ctx.mutating = was_mutating;
    send_chaosblade(res, 200, run_command(cmd, ctx).body);
  };
  route("GET", "/chaosblade", Access::Read, {"cmd"}, chaosblade, chaosblade_error);
  route("POST", "/chaosblade", Access::Read, {"cmd"}, chaosblade, chaosblade_error);

  // Seed 004: the native matrix's statuses, ChaosBlade's body.
  const auto api_error = [](httplib::Response &res, const Error &e) {
    send_chaosblade(res, http_status(e.code()), chaosblade_failure(e));
  };
  const auto send = [](httplib::Response &res, const Reply &reply) {
    send_chaosblade(res, reply.status, reply.body);
  };

  route(
      "POST", "/api/v1/experiments", Access::Admin, {},
      [=](const httplib::Request &req, httplib::Response &res, RequestContext &ctx) {
        require_json(req);
        send(res, create(parse_create_request(req.body), ctx, Shape::Record));
      },
      api_error);

  route(
      "DELETE", "/api/v1/experiments/{uid}", Access::Admin, {"force"},
      [=](const httplib::Request &req, httplib::Response &res, RequestContext &ctx) {
        send(res, destroy(req.matches[1], parse_force_param(req), ctx));
      },
      api_error);

  route(
      "GET", "/api/v1/status", Access::Read, kStatusOptions,
      [=](const httplib::Request &req, httplib::Response &res, RequestContext &) {
        send(res, status(parse_status_options(query_options(req))));
      },
      api_error);

  route(
      "POST", "/api/v1/preparations", Access::Admin, {},
      [=](const httplib::Request &req, httplib::Response &res, RequestContext &ctx) {
        require_json(req);
        send(res, prepare(parse_prepare_request(with_type_field(req.body)), ctx, Shape::Record));
      },
      api_error);

  route(
      "DELETE", "/api/v1/preparations/{uid}", Access::Admin, {},
      [=](const httplib::Request &req, httplib::Response &res, RequestContext &ctx) {
        send(res, revoke(req.matches[1], ctx));
      },
      api_error);
}

}  // namespace blade::server
