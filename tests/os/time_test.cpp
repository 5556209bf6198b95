// time travel, measured inside user-mode Linux (tests/support/uml_vm.hpp):
// moving the test machine's own wall clock would disturb everything else on
// it. The host's case boots a guest that runs the "guest:" cases of this
// binary, each with its own bladed; the clock is read with clock_gettime
// against CLOCK_BOOTTIME, which no fault moves, so the shift and the
// restore are measured to the microsecond whatever the requests cost.
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "../support/uml_vm.hpp"
#include "failpoint_kill.hpp"
#include "os_test_support.hpp"

using namespace blade::test;
using namespace blade::test::os;
using namespace std::chrono_literals;

namespace {

constexpr std::int64_t kMs = 1'000'000;

std::int64_t ns(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

// How far the wall clock is from where it was at construction, CLOCK_BOOTTIME
// carrying the elapsed time: 0 while nobody moves it.
struct ClockWatch {
  std::int64_t base = ns(CLOCK_REALTIME) - ns(CLOCK_BOOTTIME);
  std::int64_t shift_ms() const { return (ns(CLOCK_REALTIME) - ns(CLOCK_BOOTTIME) - base) / kMs; }
};

constexpr std::int64_t kOffsetMs = -(2 * 3600 + 3 * 60 + 50) * 1000LL;  // -2h3m50s

}  // namespace

TEST_CASE("time travel moves the wall clock of a user-mode Linux guest and destroy puts it back") {
  UmlResult r = run_guest_cases("guest: time travel*");
  MESSAGE("user-mode Linux run took " << r.seconds << " s; guest " << r.summary());
  INFO(r.report());
  CHECK(r.ok());
}

TEST_CASE("guest: time travel shifts by the offset, refuses a second, restores within 50 ms" *
          doctest::skip()) {
  BladedProcess d(os_options());
  auto c = d.client();
  ClockWatch clock;

  // Bad input changes nothing.
  for (const char *bad : {"abc", "5x", "1h-3m", "", "2000000h"}) {
    auto a = create(c, "time", "travel", {{"offset", bad}});
    INFO(bad << " -> " << a.body.dump());
    CHECK(a.status == 400);
  }
  CHECK(std::llabs(clock.shift_ms()) < 50);
  // A dry run says where the clock would go, and moves nothing.
  auto dry = create(c, "time", "travel", {{"offset", "-2h3m50s"}}, true);
  CHECK_MESSAGE(dry.status == 200, dry.body.dump());
  CHECK(dry.body.dump().find("clock_would_be") != std::string::npos);
  CHECK(std::llabs(clock.shift_ms()) < 50);

  auto a = create(c, "time", "travel", {{"offset", "-2h3m50s"}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  CHECK(std::llabs(clock.shift_ms() - kOffsetMs) < 50);
  // This guest has no D-Bus: nothing to disable, and the result says so.
  const std::string ntp = a.body["data"]["result"].value("ntp", "");
  CHECK_MESSAGE(ntp.find("nothing to disable") == 0, a.body.dump());

  // One clock: a second travel is a 409 naming the first.
  auto second = create(c, "time", "travel", {{"offset", "5m"}});
  CHECK(second.status == 409);
  CHECK(second.message().find(a.uid()) != std::string::npos);
  CHECK(std::llabs(clock.shift_ms() - kOffsetMs) < 50);

  // Time passes under the fault; destroy accounts for it.
  std::this_thread::sleep_for(1500ms);
  check_destroyed(c, a.uid());
  CHECK(std::llabs(clock.shift_ms()) < 50);

  // Forward, and destroy twice is still the real time.
  auto f = create(c, "time", "travel", {{"offset", "1h"}, {"disableNtp", "false"}});
  REQUIRE_MESSAGE(f.status == 201, f.body.dump());
  CHECK(std::llabs(clock.shift_ms() - 3600 * 1000) < 50);
  CHECK(f.body["data"]["result"].value("ntp", "").find("left alone") == 0);
  check_destroyed(c, f.uid());
  destroy(c, f.uid());
  CHECK(std::llabs(clock.shift_ms()) < 50);
}

TEST_CASE("guest: time travel is undone by the recovery of a bladed killed under it" *
          doctest::skip()) {
  BladedProcess d(os_options());
  auto c = d.client();
  ClockWatch clock;
  auto a = create(c, "time", "travel", {{"offset", "5m"}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  CHECK(std::llabs(clock.shift_ms() - 5 * 60 * 1000) < 50);
  d.crash();
  std::this_thread::sleep_for(1s);
  CHECK(std::llabs(clock.shift_ms() - 5 * 60 * 1000) < 50);  // the crash undid nothing
  d.restart();                                               // returns once recovery has run
  CHECK(std::llabs(clock.shift_ms()) < 50);
}

#ifdef BLADE_FAILPOINTS
TEST_CASE(
    "guest: time travel: a bladed killed at each failpoint leaves the real time once it "
    "starts again" *
    doctest::skip()) {
  ClockWatch clock;
  BladedProcess d(os_options());
  const json body = {{"target", "time"}, {"action", "travel"}, {"flags", {{"offset", "-30m"}}}};
  killed_at_each(
      d,
      {"os.time.travel.before_shift", "os.time.travel.after_shift",
       "os.time.travel.destroy.before_restore", "os.time.travel.destroy.after_restore"},
      body, [&] { CHECK(std::llabs(clock.shift_ms() + 30 * 60 * 1000) < 50); },
      [&] { CHECK(std::llabs(clock.shift_ms()) < 50); });
}
#endif
