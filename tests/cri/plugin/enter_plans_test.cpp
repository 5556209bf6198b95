// How each fault enters its container: the plan for every action the cri
// spec offers (none is left without one), and the table's rows.
#include <doctest/doctest.h>

#include <blade/plugin.hpp>

#include <fstream>
#include <sstream>

#include "blade/core/spec/spec.hpp"
#include "enter_plans.hpp"

using blade::cri::Container;
using blade::cri::inner_setup;

namespace {

Container container() {
  Container c;
  c.runtime = "runc";
  c.id = "c1";
  c.init_pid = 4242;
  c.init_start = 987654;
  return c;
}

constexpr const char *kMeters = R"({"cpu_meter":"cgroup","mem_meter":"cgroup"})";

}  // namespace

TEST_CASE("every action of the cri spec has an enter plan naming the container's init") {
  std::ifstream in(BLADE_CRI_SPEC_PATH);
  std::stringstream ss;
  ss << in.rdbuf();
  const blade::PluginSpec spec = blade::parse_spec_yaml(ss.str());
  int n = 0;
  for (const auto &t : spec.items) {
    for (const auto &a : t.actions) {
      CAPTURE(t.target);
      CAPTURE(a.name);
      const auto s = inner_setup(t.target, a.name, container());
      CHECK(s.enter.pid == 4242);
      CHECK(s.enter.start == 987654);
      // Every fault enters something: none runs in the host's namespaces.
      CHECK((s.enter.mnt || s.enter.pid_ns || s.enter.net || s.enter.cgroup));
      ++n;
    }
  }
  CHECK(n == 27);  // every action of cri_spec_test's count
}

TEST_CASE("the table: cgroup and meters for cpu/mem, mnt for files, net for the network") {
  const Container c = container();
  auto cpu = inner_setup("cpu", "fullload", c);
  CHECK((cpu.enter.cgroup && cpu.enter.pid_ns && !cpu.enter.mnt && !cpu.enter.net));
  CHECK(cpu.config_json == kMeters);
  auto mem = inner_setup("mem", "load", c);
  CHECK((mem.enter.cgroup && mem.enter.pid_ns && !mem.enter.net));
  CHECK(mem.config_json == kMeters);

  for (const char *t : {"file", "process", "script", "strace"}) {
    CAPTURE(t);
    auto s = inner_setup(t, "x", c);
    CHECK((s.enter.mnt && s.enter.pid_ns && !s.enter.net && !s.enter.cgroup));
    CHECK(s.config_json == "{}");
  }
  auto fill = inner_setup("disk", "fill", c);
  CHECK((fill.enter.mnt && fill.enter.pid_ns && !fill.enter.cgroup));
  auto burn = inner_setup("disk", "burn", c);
  CHECK((burn.enter.mnt && burn.enter.pid_ns && burn.enter.cgroup));

  for (const char *a : {"delay", "loss", "drop", "occupy", "rate"}) {
    CAPTURE(a);
    auto s = inner_setup("network", a, c);
    CHECK((s.enter.net && !s.enter.mnt && !s.enter.pid_ns && !s.enter.cgroup));
  }
  for (const char *a : {"dns", "dns_down"}) {
    CAPTURE(a);
    auto s = inner_setup("network", a, c);
    CHECK((s.enter.net && s.enter.mnt && s.enter.pid_ns && !s.enter.cgroup));
  }
}

TEST_CASE("time and systemd are not offered in a container") {
  CHECK_THROWS_AS(inner_setup("time", "travel", container()), blade::sdk::NotSupported);
  CHECK_THROWS_AS(inner_setup("systemd", "stop", container()), blade::sdk::NotSupported);
}

TEST_CASE("what outlives the init: files in the rootfs, not loads or netns state") {
  using blade::cri::outlives_init;
  CHECK(outlives_init("file", "delete"));
  CHECK(outlives_init("disk", "fill"));
  CHECK(outlives_init("network", "dns"));
  CHECK_FALSE(outlives_init("cpu", "fullload"));
  CHECK_FALSE(outlives_init("network", "drop"));
  CHECK_FALSE(outlives_init("disk", "burn"));
  CHECK(blade::cri::vanished_with_init("cpu", "fullload").find("cgroup") != std::string::npos);
}

TEST_CASE("what dies with the helper: burners, held memory, tracers, held sockets") {
  using blade::cri::lives_in_helper;
  CHECK(lives_in_helper("cpu", "fullload"));
  CHECK(lives_in_helper("mem", "load"));
  CHECK(lives_in_helper("disk", "burn"));
  CHECK(lives_in_helper("strace", "delay"));
  CHECK(lives_in_helper("network", "occupy"));
  // Kept in the container without it: undone by the experiment's destroy.
  CHECK_FALSE(lives_in_helper("network", "drop"));
  CHECK_FALSE(lives_in_helper("process", "stop"));
  CHECK_FALSE(lives_in_helper("process", "load"));
  CHECK_FALSE(lives_in_helper("file", "delete"));
}
