// Fuzz target: durations, through parse_duration (duration flags) and
// parse_timeout_seconds (an experiment's timeout), the same text to both.
// Beyond not crashing:
//   - a parsed duration printed as "<n>ns" parses back to itself;
//   - a timeout is what parse_duration says, in whole seconds, 1 s to 366 days.
#include <chrono>
#include <string>

#include "blade/core/model/duration.hpp"
#include "blade/core/model/error.hpp"
#include "blade/core/model/timeout.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  using namespace blade;
  const std::string text = fuzz::input_text(data, size);
  const auto duration = parse_duration(text);
  if (duration) {
    const auto again = parse_duration(std::to_string(duration->count()) + "ns");
    FUZZ_CHECK(again && *again == *duration);
  }
  try {
    const std::int64_t seconds = parse_timeout_seconds(text);
    FUZZ_CHECK(duration && *duration == std::chrono::seconds(seconds));
    FUZZ_CHECK(seconds >= 1 && seconds <= 366LL * 24 * 3600);
  } catch (const Error &error) {
    FUZZ_CHECK(error.code() == ErrorCode::InvalidArgument);
  }
  return 0;
}
