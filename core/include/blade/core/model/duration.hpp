// Durations as users write them: "90" (seconds), "90s", "5m", "1h30m",
// "250ms", "-2h3m50s".
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace blade {

// Parses a Go-style duration (units ns, us, ms, s, m, h, in any sequence,
// optional leading sign) or a bare integer meaning seconds. Returns nullopt
// for anything else, including overflow.
std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text);

}  // namespace blade
