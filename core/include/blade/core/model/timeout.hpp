// An experiment's timeout as a client writes it, in whole seconds.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace blade {

// "120" -> 120 s, "90s" -> 90 s, "5m" -> 300 s; rejects <= 0 and fractions
// of a second. Throws Error(InvalidArgument) on field "timeout".
std::int64_t parse_timeout_seconds(const std::string &text);

// As an experiment's timeout is read: zero ("0", "0s") is no timeout, as in
// ChaosBlade; anything else as parse_timeout_seconds.
std::optional<std::int64_t> parse_optional_timeout(const std::string &text);

}  // namespace blade
