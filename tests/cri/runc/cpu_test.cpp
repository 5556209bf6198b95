// cpu fullload inside a runc container limited to 0.5 cpu: cpu-percent is
// of the container's quota, measured from the container's own cgroup
// (cpuacct.usage on cgroup v1, cpu.stat on v2), and every burner is in
// that cgroup, none in bladed or elsewhere on the host.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "../../support/process_state.hpp"
#include "cri_runc_support.hpp"

using namespace std::chrono_literals;
using namespace blade::test;
using namespace blade::test::cri;

namespace {

// The path of `controller`'s line in a task's /proc/.../cgroup.
std::string cgroup_of(const std::filesystem::path &task, const std::string &controller) {
  std::istringstream in(read_text(task / "cgroup"));
  std::string line;
  while (std::getline(in, line)) {
    const auto a = line.find(':'), b = line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string names = "," + line.substr(a + 1, b - a - 1) + ",";
    if (names.find("," + controller + ",") != std::string::npos ||
        (controller.empty() && line.rfind("0::", 0) == 0))
      return line.substr(b + 1);
  }
  return "(none)";
}

}  // namespace

TEST_CASE("cpu fullload 50 in a 0.5-cpu container burns 0.25 of a core, all in its cgroup") {
  RuncOptions o;
  o.cpus = 0.5;
  RuncContainer ctr(o);
  BladedProcess d(cri_options());
  auto c = d.client();
  const double idle = cores_used(ctr, 1s);
  CHECK(idle < 0.05);

  const auto a = create_in(c, ctr, "cpu", "fullload", {{"cpu-percent", "50"}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  MESSAGE(a.body["data"]["result"].dump());
  CHECK(a.body["data"]["result"]["container"]["id"] == ctr.id());

  // The burners run in the helper, inside the container's cgroup: every
  // thread of every helper process, in each controller that meters cpu.
  const auto helpers = helper_pids(d);
  REQUIRE(!helpers.empty());
  const std::string controller = RuncContainer::cgroup_v2() ? "" : "cpu";
  const std::string want = cgroup_of(ctr.proc(), controller);
  int threads = 0;
  for (const pid_t h : helpers) {
    std::error_code ec;
    for (const auto &task :
         std::filesystem::directory_iterator("/proc/" + std::to_string(h) + "/task", ec)) {
      ++threads;
      CHECK_MESSAGE(cgroup_of(task.path(), controller) == want, task.path());
      if (!RuncContainer::cgroup_v2())
        CHECK(cgroup_of(task.path(), "cpuacct") == cgroup_of(ctr.proc(), "cpuacct"));
    }
  }
  CHECK(threads > 0);

  // The feedback loop settles over its one-second window, then 3 s are
  // measured: 50% of the 0.5-cpu quota.
  std::this_thread::sleep_for(2s);
  const pid_t daemon = d.process->pid();
  const auto daemon_ticks = cpu_ticks(daemon);
  const double load = cores_used(ctr, 3s);
  MESSAGE("container cpu over 3 s: " << load << " cores");
  CHECK(load > 0.25 - 0.06);
  CHECK(load < 0.25 + 0.06);
  // bladed itself burns nothing (a burner left in the daemon would).
  const auto daemon_used = static_cast<double>(cpu_ticks(daemon) - daemon_ticks) /
                           static_cast<double>(::sysconf(_SC_CLK_TCK)) / 3;
  CHECK(daemon_used < 0.05);

  const auto gone = destroy(c, a.uid());
  CHECK_MESSAGE(gone.status == 200, gone.body.dump());
  // A cpu load writes nothing named by the uid under the state dir, so
  // only its helper can be left.
  CHECK(no_helper_left(d));
  CHECK(cores_used(ctr, 1s) < 0.05);
  CHECK_FALSE(has_blade_table(host_nft_tables()));
}
