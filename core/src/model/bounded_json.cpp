#include "blade/core/model/bounded_json.hpp"

namespace blade {

bool json_depth_within(std::string_view text, std::size_t max_depth) {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > max_depth) return false;
        break;
      case ']':
      case '}':
        // An unbalanced close is the parser's to refuse; it only must not
        // wrap the count around.
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return true;
}

BoundedJson parse_bounded_json(std::string_view text, std::size_t max_depth) {
  BoundedJson result;
  if (!json_depth_within(text, max_depth)) {
    result.value = nlohmann::json(nlohmann::json::value_t::discarded);
    result.problem = JsonProblem::TooDeep;
    return result;
  }
  result.value = nlohmann::json::parse(text, nullptr, false);
  if (result.value.is_discarded()) result.problem = JsonProblem::Malformed;
  return result;
}

}  // namespace blade
