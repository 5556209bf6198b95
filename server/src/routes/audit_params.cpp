#include "audit_params.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "blade/core/model/bounded_json.hpp"

namespace blade::server {
namespace {

std::string dump(const nlohmann::json &value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The body as audit parameters: JSON as it came (bounded), else its size.
// The parser only checks it (no document is built and dumped again per
// request); it refuses bytes that are not UTF-8, so the text kept is valid
// JSON as it stands, but for a byte order mark, which it skips too.
void append_body(std::string &out, const httplib::Request &req) {
  if (req.body.empty()) {
    out += "null";
    return;
  }
  constexpr std::size_t kAuditBodyMax = 4096;
  if (req.body.size() <= kAuditBodyMax && json_depth_within(req.body) &&
      nlohmann::json::accept(req.body)) {
    constexpr std::string_view kBom = "\xEF\xBB\xBF";
    std::string_view text = req.body;
    if (text.starts_with(kBom)) text.remove_prefix(kBom.size());
    out += text;
    return;
  }
  out += fmt::format("\"<{} bytes>\"", req.body.size());
}

}  // namespace

std::string audit_params_json(const httplib::Request &req, const std::string &request_id) {
  // Keys in the order a JSON object of them was dumped before (sorted).
  std::string out = R"({"body":)";
  append_body(out, req);
  out += R"(,"query":)";
  if (req.params.empty()) {
    out += "{}";
  } else {
    nlohmann::json query = nlohmann::json::object();
    for (const auto &[k, v] : req.params)
      query[k] = v;
    out += dump(query);
  }
  out += R"(,"request_id":)";
  out += dump(request_id);
  out += '}';
  return out;
}

}  // namespace blade::server
