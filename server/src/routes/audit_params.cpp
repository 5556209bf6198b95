#include "audit_params.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "blade/core/model/bounded_json.hpp"
#include "blade/core/model/experiment.hpp"

namespace blade::server {
namespace {

// The body as audit parameters: JSON as it came (bounded), else its size.
// The parser only checks it (no document is built and dumped again per
// request); it refuses bytes that are not UTF-8, so the text kept is valid
// JSON as it stands, but for a byte order mark, which it skips too.
void add_body(JsonObjectWriter &w, const httplib::Request &req) {
  if (req.body.empty()) {
    w.raw("body", "null");
    return;
  }
  constexpr std::size_t kAuditBodyMax = 4096;
  if (req.body.size() <= kAuditBodyMax && json_depth_within(req.body) &&
      nlohmann::json::accept(req.body)) {
    constexpr std::string_view kBom = "\xEF\xBB\xBF";
    std::string_view text = req.body;
    if (text.starts_with(kBom)) text.remove_prefix(kBom.size());
    w.raw("body", text);
    return;
  }
  w.string("body", fmt::format("<{} bytes>", req.body.size()));
}

}  // namespace

std::string audit_params_json(const httplib::Request &req, const std::string &request_id) {
  // Keys sorted, as a JSON object of them was dumped before; a repeated
  // query parameter keeps its last value, as that object did.
  FlagValues query;
  for (const auto &[k, v] : req.params)
    query[k] = v;
  std::string out;
  JsonObjectWriter w(out);
  add_body(w, req);
  w.flags("query", query).string("request_id", request_id).close();
  return out;
}

}  // namespace blade::server
