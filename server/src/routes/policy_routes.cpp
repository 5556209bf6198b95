// The HTTP fault policy routes (docs/http-api.md) over the PolicyService.
// The service validates, stores, audits and republishes the rule set; here
// the body is read (JSON only, depth-capped) and the result enveloped.
//
// Bodies are JSON only: YAML would need a cap on alias expansion that the
// converter does not have (a 1 MiB "billion laughs" body expands beyond
// memory), so `blade policy apply` converts a YAML file before sending it.
#include <string>

#include <fmt/format.h>

#include "blade/core/model/error.hpp"
#include "blade/core/policy/policy_service.hpp"
#include "experiment_request.hpp"
#include "http/envelope.hpp"
#include "http/http_server.hpp"

namespace blade::server {
namespace {

nlohmann::json policy_body(const httplib::Request &req) {
  require_json(req);
  nlohmann::json body = parse_body(req.body);
  if (!body.is_object()) {
    throw Error(ErrorCode::InvalidArgument, "body: must be a JSON object",
                {{"body", "must be a JSON object"}});
  }
  return body;
}

}  // namespace

void HttpServer::install_policy_routes() {
  route("POST", "/v1/policies", Access::Admin, {},
        [this](const httplib::Request &req, httplib::Response &res, RequestContext &ctx) {
          const FaultPolicy p = daemon_.policies().create(policy_body(req), ctx.caller);
          send_ok(res, 201, to_json(p));
        });

  route("GET", "/v1/policies", Access::Read, {},
        [this](const httplib::Request &, httplib::Response &res, RequestContext &) {
          nlohmann::json items = nlohmann::json::array();
          for (const auto &p : daemon_.policies().list())
            items.push_back(to_json(p));
          const auto total = items.size();
          send_ok(res, 200, {{"items", std::move(items)}, {"total", total}});
        });

  route("GET", "/v1/policies/{name}", Access::Read, {},
        [this](const httplib::Request &req, httplib::Response &res, RequestContext &) {
          const std::string name = req.matches[1];
          const auto p = daemon_.policies().get(name);
          if (!p) throw policy_not_found(name);
          send_ok(res, 200, to_json(*p));
        });

  // The body may leave metadata.name out: the path names the policy.
  route("PUT", "/v1/policies/{name}", Access::Admin, {},
        [this](const httplib::Request &req, httplib::Response &res, RequestContext &ctx) {
          const std::string name = req.matches[1];
          nlohmann::json body = policy_body(req);
          if (!body.contains("metadata")) body["metadata"] = nlohmann::json::object();
          if (body["metadata"].is_object() && !body["metadata"].contains("name"))
            body["metadata"]["name"] = name;
          send_ok(res, 200, to_json(daemon_.policies().update(name, body, ctx.caller)));
        });

  // Answers the policy as it stood when deleted (read and deleted under the
  // service's one lock), so a client can put it back.
  route("DELETE", "/v1/policies/{name}", Access::Admin, {},
        [this](const httplib::Request &req, httplib::Response &res, RequestContext &ctx) {
          send_ok(res, 200, to_json(daemon_.policies().remove(req.matches[1], ctx.caller)));
        });
}

}  // namespace blade::server
