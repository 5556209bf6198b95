#include "audit_params.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "blade/core/model/bounded_json.hpp"

namespace blade::server {
namespace {

// The body as audit parameters: JSON as it came (bounded), else its size.
nlohmann::json audit_body(const httplib::Request &req) {
  if (req.body.empty()) return nullptr;
  constexpr std::size_t kAuditBodyMax = 4096;
  if (req.body.size() <= kAuditBodyMax) {
    auto parsed = parse_bounded_json(req.body);
    if (parsed.problem == JsonProblem::None) return std::move(parsed.value);
  }
  return fmt::format("<{} bytes>", req.body.size());
}

}  // namespace

std::string audit_params_json(const httplib::Request &req, const std::string &request_id) {
  nlohmann::json query = nlohmann::json::object();
  for (const auto &[k, v] : req.params)
    query[k] = v;
  return nlohmann::json{{"request_id", request_id}, {"query", query}, {"body", audit_body(req)}}
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace blade::server
