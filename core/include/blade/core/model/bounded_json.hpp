// JSON from outside the daemon (request bodies, plugin outputs, stored rows,
// an external binary's stdout) is parsed only through here, with its nesting
// capped. nlohmann's parser is iterative, but dump(), copies, comparisons and
// to_string recurse once per level: a 1 MiB body of "[[[[..." parsed without
// a cap would take a worker's stack down the first time anything walked it.
#pragma once

#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

namespace blade {

// Levels of arrays and objects a parsed document may hold: far beyond any
// body of the API (flags are one level below the body), far below what a
// recursive walk can take on an 8 MiB thread stack.
inline constexpr std::size_t kMaxJsonDepth = 64;

enum class JsonProblem {
  None,
  Malformed,  // not one JSON text
  TooDeep,    // nested deeper than the cap (never parsed)
};

struct BoundedJson {
  nlohmann::json value;  // discarded unless problem is None
  JsonProblem problem = JsonProblem::None;
};

// True when no array or object in `text` opens deeper than `max_depth`
// levels (strings are skipped, so "[[[" inside one does not count). Linear,
// without recursion; meant to run before the parser.
bool json_depth_within(std::string_view text, std::size_t max_depth = kMaxJsonDepth);

// Parses `text` unless it nests deeper than `max_depth`; never throws.
BoundedJson parse_bounded_json(std::string_view text, std::size_t max_depth = kMaxJsonDepth);

}  // namespace blade
