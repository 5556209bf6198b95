// An experiment's timeout as a client writes it, in whole seconds.
#pragma once

#include <cstdint>
#include <string>

namespace blade {

// "120" -> 120 s, "90s" -> 90 s, "5m" -> 300 s; rejects <= 0 and fractions
// of a second. Throws Error(InvalidArgument) on field "timeout".
std::int64_t parse_timeout_seconds(const std::string &text);

}  // namespace blade
