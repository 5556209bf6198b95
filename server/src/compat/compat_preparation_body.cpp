#include "compat_preparation_body.hpp"

#include <nlohmann/json.hpp>

#include "blade/core/model/error.hpp"
#include "routes/experiment_request.hpp"

namespace blade::server {

std::string with_type_field(const std::string &body) {
  // The body's nesting is capped (a deep one is a 400 naming it) before
  // anything walks it: dump() below recurses once per level.
  auto json = parse_body(body);
  if (!json.is_object() || !json.contains("target")) return body;
  if (json.contains("type")) {
    throw Error(ErrorCode::InvalidArgument, "target: give type or target, not both",
                {{"target", "give type or target, not both"}});
  }
  json["type"] = std::move(json["target"]);
  json.erase("target");
  return json.dump();
}

}  // namespace blade::server
