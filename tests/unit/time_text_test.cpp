// Times as text: the store's exact form and RFC 3339 as people write it.
#include <chrono>

#include <doctest/doctest.h>

#include "blade/core/model/experiment.hpp"

using blade::format_time;
using blade::parse_rfc3339;
using blade::parse_time;
using namespace std::chrono;

TEST_CASE("parse_time reads exactly what format_time writes") {
  const auto t = sys_days{2026y / 11 / 22} + 1h + 2min + 3s + 456ms;
  CHECK(format_time(t) == "2026-11-22T01:02:03.456Z");
  CHECK(parse_time("2026-11-22T01:02:03.456Z") == t);
  CHECK_FALSE(parse_time("2026-11-22T01:02:03Z"));
  CHECK_FALSE(parse_time("2026-13-22T01:02:03.456Z"));
}

TEST_CASE("parse_rfc3339 takes Z or an offset, with or without a fraction") {
  const auto t = sys_days{2027y / 1 / 31} + 0s;
  CHECK(parse_rfc3339("2027-01-31T00:00:00Z") == t);
  CHECK(parse_rfc3339("2027-01-31T00:00:00.250z") == t);
  CHECK(parse_rfc3339("2027-01-31T02:30:00+02:30") == t);
  CHECK(parse_rfc3339("2027-01-30T19:00:00-05:00") == t);
  for (const char *bad :
       {"2027-01-31", "2027-01-31T00:00:00", "2027-01-31T00:00:00+0200", "2027-01-31T25:00:00Z",
        "2027-00-31T00:00:00Z", "tomorrow", "2027-01-31T00:00:00Zjunk", ""}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_rfc3339(bad));
  }
}
