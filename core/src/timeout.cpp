#include "blade/core/timeout.hpp"

#include <chrono>

#include <fmt/format.h>

#include "blade/core/duration.hpp"
#include "blade/core/error.hpp"

namespace blade {

std::int64_t parse_timeout_seconds(const std::string &text) {
  auto bad = [&](const std::string &why) {
    return Error(ErrorCode::InvalidArgument, "timeout: " + why, {{"timeout", why}});
  };
  auto d = parse_duration(text);
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
