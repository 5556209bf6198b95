// Signals as ChaosBlade's --signal takes them (it hands the value to
// `kill -<value>`): a number, or a name with or without "SIG" in any case
// ("9", "KILL", "SIGTERM", "term", "RTMIN+3").
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace blade::os {

// The signal number, or nullopt when `text` is neither 1-64 nor a name.
std::optional<int> parse_signal(std::string_view text);

// "SIGKILL", "SIGRTMIN+3": how the result names a signal.
std::string signal_name(int sig);

}  // namespace blade::os
