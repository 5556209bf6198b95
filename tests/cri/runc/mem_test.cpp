// mem load inside a runc container limited to 1 GiB: mem-percent is of the
// container's limit, and the memory is charged to the container's memory
// cgroup (memory.usage_in_bytes on v1, memory.current on v2), measured
// there; destroy gives it back.
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "cri_runc_support.hpp"

using namespace std::chrono_literals;
using namespace blade::test;
using namespace blade::test::cri;

TEST_CASE("mem load 50 in a 1 GiB container: half its limit charged to its cgroup, then freed") {
  constexpr std::int64_t kLimit = std::int64_t{1} << 30;
  RuncOptions o;
  o.memory_limit = kLimit;
  RuncContainer ctr(o);
  const std::uint64_t before = ctr.memory_usage();

  BladedProcess d(cri_options());
  auto c = d.client();
  const auto a = create_in(c, ctr, "mem", "load", {{"mem-percent", "50"}, {"rate", "1024"}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  MESSAGE(a.body["data"]["result"].dump());

  // The cgroup's usage reaches half its limit: what was there plus what
  // the load was asked to add, within 10% of the latter.
  const double asked = static_cast<double>(kLimit / 2) - static_cast<double>(before);
  double rise = 0;
  const bool reached = eventually(
      [&] {
        rise = static_cast<double>(ctr.memory_usage()) - static_cast<double>(before);
        return rise > asked * 0.9;
      },
      15s);
  std::this_thread::sleep_for(1s);  // held, not overshooting
  rise = static_cast<double>(ctr.memory_usage()) - static_cast<double>(before);
  MESSAGE("charged to the container: " << rise / (1 << 20) << " MiB of " << asked / (1 << 20)
                                       << " MiB asked");
  CHECK(reached);
  CHECK(rise > asked * 0.9);
  CHECK(rise < asked * 1.1);

  const auto gone = destroy(c, a.uid());
  CHECK_MESSAGE(gone.status == 200, gone.body.dump());
  CHECK(eventually(
      [&] { return ctr.memory_usage() < before + (std::uint64_t{16} << 20); }, 10s));
  // A memory load writes nothing named by the uid under the state dir, so
  // only its helper can be left.
  CHECK(no_helper_left(d));
}
