#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

#include <doctest/doctest.h>

#include "blade/core/model/duration.hpp"

using namespace std::chrono_literals;
using blade::parse_duration;

namespace {

std::int64_t nanos(std::string_view text) {
  const std::optional<std::chrono::nanoseconds> parsed = parse_duration(text);
  REQUIRE_MESSAGE(parsed.has_value(), "rejected: ", text);
  return parsed->count();
}

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();

}  // namespace

TEST_CASE("parse_duration: a bare integer means seconds") {
  CHECK(parse_duration("0") == 0ns);
  CHECK(parse_duration("90") == 90s);
  CHECK(parse_duration("600") == 10min);
  CHECK(parse_duration("-5") == -5s);
  CHECK(parse_duration("+5") == 5s);
  CHECK(parse_duration("007") == 7s);
}

TEST_CASE("parse_duration: every unit") {
  CHECK(parse_duration("1ns") == 1ns);
  CHECK(parse_duration("1us") == 1us);
  CHECK(parse_duration("1\u00b5s") == 1us);  // micro sign
  CHECK(parse_duration("1\u03bcs") == 1us);  // Greek mu
  CHECK(parse_duration("250ms") == 250ms);
  CHECK(parse_duration("90s") == 90s);
  CHECK(parse_duration("5m") == 5min);
  CHECK(parse_duration("2h") == 2h);
}

TEST_CASE("parse_duration: sequences of terms and signs") {
  CHECK(parse_duration("1h30m") == 90min);
  CHECK(parse_duration("-2h3m50s") == -(2h + 3min + 50s));
  CHECK(parse_duration("+1m1s") == 61s);
  CHECK(parse_duration("1h1m1s1ms1us1ns") == 1h + 1min + 1s + 1ms + 1us + 1ns);
  CHECK(parse_duration("1s1s") == 2s);  // Go accepts repeated units too
  CHECK(parse_duration("0s") == 0ns);
  CHECK(parse_duration("-0") == 0ns);
  CHECK(parse_duration("0h0m") == 0ns);
}

TEST_CASE("parse_duration: decimal fractions") {
  CHECK(parse_duration("1.5h") == 90min);
  CHECK(parse_duration("0.5s") == 500ms);
  CHECK(parse_duration(".5s") == 500ms);
  CHECK(parse_duration("1.s") == 1s);
  CHECK(parse_duration("1.25m") == 75s);
  CHECK(parse_duration("0.1s") == 100ms);
  CHECK(parse_duration("1.000000001s") == 1s + 1ns);
  CHECK(parse_duration("0.0000000001s") == 0ns);                    // below resolution
  CHECK(parse_duration("1.00000000000000000000000000001s") == 1s);  // many digits
}

TEST_CASE("parse_duration: the int64 nanosecond limits") {
  CHECK(nanos("2562047h47m16.854775807s") == kMax);
  CHECK(nanos("9223372036854775807ns") == kMax);
  CHECK(nanos("-9223372036854775808ns") == kMin);
  CHECK(nanos("-2562047h47m16.854775808s") == kMin);
  CHECK(nanos("9223372036") == 9223372036LL * 1'000'000'000LL);
  CHECK_FALSE(parse_duration("9223372036854775808ns"));
  CHECK_FALSE(parse_duration("2562047h47m16.854775808s"));
  CHECK_FALSE(parse_duration("2562048h"));
  CHECK_FALSE(parse_duration("9223372037"));
  CHECK_FALSE(parse_duration("99999999999999999999ns"));
  CHECK_FALSE(parse_duration("99999999999999999999"));
  CHECK_FALSE(parse_duration("2562047h2562047h"));
}

TEST_CASE("parse_duration: malformed text") {
  for (const std::string_view bad :
       {"",     "-",   "+",     "s",     "h1",   ".s",   ".",      "1.5",
        "1h30", "1x",  "1 s",   " 5s",   "5s ",  "1e3s", "--5s",   "+-5s",
        "5S",   "1hh", "1h-5m", "0x10s", "1,5s", "five", "1.2.3s", "\u00b5s"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_duration(bad).has_value());
  }
}
