// The bounds a policy is validated against (documented in the HTTP fault
// docs, section "Policies"). Everything a body can make the daemon or a
// data plane hold is bounded here.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace blade::policy_limits {

inline constexpr const char *kApiVersion = "v1";
inline constexpr const char *kKind = "FaultInjectionPolicy";

inline constexpr std::size_t kMaxNameBytes = 63;
inline constexpr std::size_t kMaxRules = 100;
inline constexpr std::size_t kMaxHeaderMatchers = 16;
inline constexpr std::size_t kMaxHeaderNameBytes = 256;
inline constexpr std::size_t kMaxMethodBytes = 32;
// Path and header values, regular expressions included.
inline constexpr std::size_t kMaxPatternBytes = 1024;
inline constexpr std::size_t kMaxAbortBodyBytes = 64 * 1024;
// RE2's memory budget per compiled expression; the http plugin compiles
// with the same, so a pattern accepted here compiles there too.
inline constexpr std::int64_t kRegexMaxMem = 1 << 20;

inline constexpr std::int64_t kMinPriority = -1'000'000;
inline constexpr std::int64_t kMaxPriority = 1'000'000;
inline constexpr std::chrono::milliseconds kMaxDelay = std::chrono::minutes(10);
inline constexpr std::int64_t kMaxStartDelayMs = 7LL * 24 * 3600 * 1000;    // a week
inline constexpr std::int64_t kMaxDurationSeconds = 365LL * 24 * 3600;      // a year

}  // namespace blade::policy_limits
