#include "blade/core/model/timeout.hpp"

#include <algorithm>
#include <chrono>
#include <string_view>

#include <fmt/format.h>

#include "blade/core/model/duration.hpp"
#include "blade/core/model/error.hpp"

namespace blade {

namespace {

bool is_whole_number(std::string_view text) {
  if (!text.empty() && (text.front() == '+' || text.front() == '-')) text.remove_prefix(1);
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::int64_t parse_timeout_seconds(const std::string &text) {
  auto bad = [&](const std::string &why) {
    return Error(ErrorCode::InvalidArgument, "timeout: " + why, {{"timeout", why}});
  };
  auto d = parse_duration(text);
  if (!d && is_whole_number(text))  // beyond 64 bits
    throw bad(text.front() == '-' ? "must be positive" : "must be at most 366 days");
  if (!d)
    throw bad(fmt::format("'{}' is not a number of seconds or a duration like 90s or 5m", text));
  if (d->count() <= 0) throw bad("must be positive");
  if (d->count() % 1000000000 != 0) throw bad("must be a whole number of seconds");
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(*d).count();
  constexpr std::int64_t kYear = 366LL * 24 * 3600;
  if (seconds > kYear) throw bad("must be at most 366 days");
  return seconds;
}

}  // namespace blade

namespace blade {

std::optional<std::int64_t> parse_optional_timeout(const std::string &text) {
  // ChaosBlade read a timeout of 0 as none at all.
  if (auto d = parse_duration(text); d && d->count() == 0) return std::nullopt;
  return parse_timeout_seconds(text);
}

}  // namespace blade
