// The runc fixture itself (tests/support/runc_container.hpp): a container
// really runs with the quota, limit and labels asked for, processes start
// inside it, its loopback works, and nothing of it is left after.
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "../../../plugins/common/proc_reader.hpp"
#include "../../support/eventually.hpp"
#include "../../support/file_text.hpp"
#include "../../support/process_state.hpp"
#include "../../support/runc_container.hpp"

namespace fs = std::filesystem;
using namespace blade::test;

namespace {

// The inode of one of a process's namespaces (/proc/<pid>/ns/<kind>).
ino_t ns_inode(pid_t pid, const std::string &kind) {
  struct stat st {};
  REQUIRE(::stat(("/proc/" + std::to_string(pid) + "/ns/" + kind).c_str(), &st) == 0);
  return st.st_ino;
}

}  // namespace

TEST_CASE("a busybox runc container runs in its own namespaces and cgroup, and is gone after") {
  RuncOptions o;
  o.cpus = 0.5;
  o.memory_limit = 64 << 20;
  o.annotations["io.kubernetes.pod.name"] = "fixture-pod";
  o.files["/etc/blade/victim.conf"] = "inside\n";
  RuncContainer c(o);
  std::vector<fs::path> cgroups;
  {
    const pid_t init = c.init_pid();
    CHECK(process_state(init) != 0);
    CHECK(blade::plugins::proc::start_time_of(init) == c.init_start());
    for (const char *kind : {"mnt", "pid", "net", "ipc", "uts"})
      CHECK_MESSAGE(ns_inode(init, kind) != ns_inode(::getpid(), kind), kind);

    // The cgroup runc made, with the quota and the limit.
    CHECK(c.cgroup_dir("cpu").string().find("/blade-test/" + c.id()) != std::string::npos);
    if (!RuncContainer::cgroup_v2()) {
      CHECK(read_text(c.cgroup_file("cpu", "cpu.cfs_quota_us")) == "50000\n");
      CHECK(read_text(c.cgroup_file("cpu", "cpu.cfs_period_us")) == "100000\n");
      CHECK(read_text(c.cgroup_file("memory", "memory.limit_in_bytes")) ==
            std::to_string(64 << 20) + "\n");
    } else {
      CHECK(read_text(c.cgroup_file("cpu", "cpu.max")) == "50000 100000\n");
      CHECK(read_text(c.cgroup_file("memory", "memory.max")) == std::to_string(64 << 20) + "\n");
    }
    CHECK(c.memory_usage() > 0);
    CHECK(c.cpu_usage_ns() > 0);

    // runc's state shows the annotations as labels, as the resolver reads them.
    const auto state = nlohmann::json::parse(read_text(c.root() / c.id() / "state.json"));
    const auto labels = state["config"]["labels"].dump();
    CHECK(labels.find("io.kubernetes.pod.name=fixture-pod") != std::string::npos);
    CHECK(labels.find("io.kubernetes.container.name=app") != std::string::npos);

    // The file is in the rootfs, seen through the init's root.
    CHECK(read_text(c.proc() / "root/etc/blade/victim.conf") == "inside\n");

    // A process started inside: in the init's pid namespace and cgroup.
    const pid_t sleeper = c.exec_detached({"/bin/sleep", "1000"});
    CHECK(process_state(sleeper) != 0);
    CHECK(ns_inode(sleeper, "pid") == ns_inode(init, "pid"));
    CHECK(read_text("/proc/" + std::to_string(sleeper) + "/cgroup") == read_text(c.proc() / "cgroup"));

    // Its loopback is up: a listener inside answers a client inside.
    c.exec_detached({"/bin/nc", "-l", "-p", "8080", "-e", "/bin/echo", "pong"});
    RuncContainer::Ran ran;
    eventually([&] {
      ran = c.exec({"/bin/nc", "-w", "1", "127.0.0.1", "8080"});
      return ran.output == "pong\n";
    });
    CHECK(ran.output == "pong\n");
    cgroups = c.cgroup_paths();
    REQUIRE(!cgroups.empty());
    for (const auto &p : cgroups)
      CHECK_MESSAGE(fs::exists(p), p);

    c.remove();
    CHECK_FALSE(c.exists());
    // Dead: gone, or a zombie its new parent (whoever reaps orphans here)
    // has not reaped yet.
    for (const pid_t pid : {init, sleeper})
      CHECK(eventually([&] { return process_state(pid) == 0 || process_state(pid) == 'Z'; }));
  }
  for (const auto &p : cgroups)
    CHECK_MESSAGE(!fs::exists(p), p);
}
