// The experiment routes (docs/http-api.md) over the ExperimentService.
#include <chrono>

#include <fmt/format.h>

#include "blade/core/model/error.hpp"
#include "experiment_request.hpp"
#include "experiment_view.hpp"
#include "http/envelope.hpp"
#include "http/http_server.hpp"
#include "page_json.hpp"

namespace blade::server {
namespace {

// A failed experiment goes back with the matrix's status for its failure
// kind, and the experiment itself as data.
void send_failed(httplib::Response &res, ErrorCode code, const Experiment &e) {
  send_error(res, executor_error(code, e.error.empty() ? "the executor failed" : e.error),
             to_json(e));
}

}  // namespace

void HttpServer::install_experiment_routes() {
  route("POST", "/v1/experiments", Access::Admin, {},
        [this](const httplib::Request &req, httplib::Response &res, RequestContext &ctx) {
          require_json(req);
          CreateRequest create = parse_create_request(req.body);
          const auto start = std::chrono::steady_clock::now();
          CreateResult result = daemon_.service().create(create, ctx.caller);
          if (result.plan) return send_ok(res, 200, *result.plan);
          if (!create.async) metrics_.observe_create(std::chrono::steady_clock::now() - start);
          if (result.failure) {
            ctx.error_code = std::string(to_string(*result.failure));
            return send_failed(res, *result.failure, result.experiment);
          }
          send_experiment(res, create.async ? 202 : 201, result.experiment, nullptr,
                          daemon_.counters());
        });

  route("GET", "/v1/experiments", Access::Read,
        {"status", "target", "action", "scope", "limit", "offset", "after", "order"},
        [this](const httplib::Request &req, httplib::Response &res, RequestContext &) {
          const auto page = daemon_.service().list(parse_experiment_filter(req));
          send_ok(res, 200, page_json(page, [this](const Experiment &e) {
                    return experiment_view(e, daemon_.counters());
                  }));
        });

  route("GET", "/v1/experiments/{uid}", Access::Read, {},
        [this](const httplib::Request &req, httplib::Response &res, RequestContext &) {
          send_experiment(res, 200, daemon_.service().get(req.matches[1]), nullptr,
                          daemon_.counters());
        });

  route("DELETE", "/v1/experiments/{uid}", Access::Admin, {"force"},
        [this](const httplib::Request &req, httplib::Response &res, RequestContext &ctx) {
          const bool force = parse_force_param(req);
          const auto start = std::chrono::steady_clock::now();
          DestroyResult result = daemon_.service().destroy(req.matches[1], ctx.caller, force);
          metrics_.observe_destroy(std::chrono::steady_clock::now() - start);
          if (result.failure) {
            ctx.error_code = std::string(to_string(*result.failure));
            return send_failed(res, *result.failure, result.experiment);
          }
          send_experiment(res, 200, result.experiment, nullptr, daemon_.counters());
        });
}

}  // namespace blade::server
