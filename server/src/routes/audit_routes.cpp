// GET /v1/audit: the audit log, newest first, for admins (an extension of
// docs/http-api.md; the log names tokens, never their secrets).
#include <charconv>

#include "blade/core/model/bounded_json.hpp"
#include "blade/core/model/experiment.hpp"
#include "http/envelope.hpp"
#include "http/http_server.hpp"

namespace blade::server {
namespace {

std::int64_t int_query(const httplib::Request &req, const char *name, std::int64_t fallback) {
  if (!req.has_param(name)) return fallback;
  const std::string text = req.get_param_value(name);
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size())
    throw Error(ErrorCode::InvalidArgument, std::string(name) + ": must be an integer",
                {{name, "must be an integer"}});
  return v;
}

nlohmann::json to_json(const AuditEntry &a) {
  // The stored params hold a request body one level down (http_server.cpp).
  auto parsed = parse_bounded_json(a.params_json, kMaxJsonDepth + 1);
  const nlohmann::json &params = parsed.value;
  return {{"id", a.id},
          {"time", format_time(a.time)},
          {"actor", a.actor},
          {"remote", a.remote},
          {"action", a.action},
          {"subject", a.subject},
          {"params", params.is_discarded() ? nlohmann::json(a.params_json) : params},
          {"outcome", a.outcome}};
}

}  // namespace

void HttpServer::install_audit_routes() {
  route("GET", "/v1/audit", Access::Admin, {"limit", "offset"},
        [this](const httplib::Request &req, httplib::Response &res, RequestContext &) {
          const auto limit = int_query(req, "limit", 50);
          const auto offset = int_query(req, "offset", 0);
          if (limit < 1 || limit > 1000)
            throw Error(ErrorCode::InvalidArgument, "limit: must be between 1 and 1000",
                        {{"limit", "must be between 1 and 1000"}});
          if (offset < 0)
            throw Error(ErrorCode::InvalidArgument, "offset: must be >= 0",
                        {{"offset", "must be >= 0"}});
          // Requests answered before this one are in the log it returns.
          daemon_.store().flush_audit();
          nlohmann::json items = nlohmann::json::array();
          for (const auto &a : daemon_.store().list_audit(limit, offset))
            items.push_back(to_json(a));
          send_ok(res, 200, {{"items", items}});
        });
}

}  // namespace blade::server
