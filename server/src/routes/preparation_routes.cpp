// The preparation routes of docs/http-api.md (attaching the JVM agent and similar).
#include "blade/core/model/error.hpp"
#include "experiment_request.hpp"
#include "http/envelope.hpp"
#include "http/http_server.hpp"
#include "page_json.hpp"

namespace blade::server {

void HttpServer::install_preparation_routes() {
  route("POST", "/v1/preparations", Access::Admin, {},
        [this](const httplib::Request &req, httplib::Response &res, RequestContext &ctx) {
          require_json(req);
          Preparation p = daemon_.service().prepare(parse_prepare_request(req.body), ctx.caller);
          if (p.status == PreparationStatus::Failed) {
            ctx.error_code = "FAILED_PRECONDITION";
            return send_error(res, Error(ErrorCode::FailedPrecondition, p.error), to_json(p));
          }
          send_ok(res, 201, to_json(p));
        });

  route("GET", "/v1/preparations", Access::Read,
        {"status", "type", "limit", "offset", "after", "order"},
        [this](const httplib::Request &req, httplib::Response &res, RequestContext &) {
          const auto page = daemon_.service().list_preparations(parse_preparation_filter(req));
          send_ok(res, 200,
                  page_json(page, [](const Preparation &p) { return to_json(p); }));
        });

  route("GET", "/v1/preparations/{uid}", Access::Read, {},
        [this](const httplib::Request &req, httplib::Response &res, RequestContext &) {
          send_ok(res, 200, to_json(daemon_.service().get_preparation(req.matches[1])));
        });

  route("DELETE", "/v1/preparations/{uid}", Access::Admin, {},
        [this](const httplib::Request &req, httplib::Response &res, RequestContext &ctx) {
          // Idempotent: a revoked or failed preparation comes back as it is.
          send_ok(res, 200, to_json(daemon_.service().revoke(req.matches[1], ctx.caller)));
        });
}

}  // namespace blade::server
