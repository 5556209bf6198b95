// The containerd fixture alone (no bladed): a private containerd, the
// busybox image built here and imported, a container run in k8s.io with
// kubelet-style labels and annotations; its on-disk state is what the cri
// plugin's containerd resolver reads, checked against /proc; and nothing is
// left once the objects go.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "../../../plugins/common/proc_reader.hpp"
#include "../../support/containerd_daemon.hpp"
#include "../../support/file_text.hpp"
#include "../../support/oci_image.hpp"
#include "../../support/process_state.hpp"
#include "../../support/temp_dir.hpp"

using blade::test::build_busybox_oci_image;
using blade::test::cgroup_dirs;
using blade::test::cgroup_v2_only;
using blade::test::ContainerdContainer;
using blade::test::ContainerdContainerOptions;
using blade::test::ContainerdDaemon;
using blade::test::ContainerdImage;
using blade::test::mounts_under;
using blade::test::pids_with_arg;
using blade::test::process_state;
using blade::test::read_text;
using blade::test::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

bool in_procs(const fs::path &cgroup, pid_t pid) {
  std::ifstream procs(cgroup / "cgroup.procs");
  for (pid_t p = 0; procs >> p;)
    if (p == pid) return true;
  return false;
}

}  // namespace

TEST_CASE("the image tarball is the same bytes on every build") {
  TempDir tmp("blade-oci");
  build_busybox_oci_image(tmp / "a.tar", "blade.test/busybox:1");
  build_busybox_oci_image(tmp / "b.tar", "blade.test/busybox:1");
  const std::string a = read_text(tmp / "a.tar");
  CHECK(a.size() > 1'000'000);  // busybox itself is in it
  CHECK(a == read_text(tmp / "b.tar"));
}

TEST_CASE("a private containerd runs a busybox container in k8s.io and leaves nothing") {
  TempDir tmp("blade-oci");
  build_busybox_oci_image(tmp / "busybox.tar", "blade.test/busybox:1");

  fs::path daemon_dir, task_dir, runc_state;
  std::string socket;
  pid_t daemon_pid = 0, init = 0, exec_pid = 0;
  std::vector<fs::path> cgroups;
  {
    ContainerdDaemon d;
    daemon_dir = d.dir();
    socket = d.socket();
    daemon_pid = d.pid();
    {
      ContainerdImage image(d, "k8s.io", tmp / "busybox.tar", "blade.test/busybox:1");
      ContainerdContainerOptions o;
      o.image = image.ref();
      o.id = "bladefixture0123456789";
      o.cpus = "0.5";
      o.memory_limit = 64 << 20;
      o.labels = {{"blade.test/label", "yes"}};
      ContainerdContainer c(d, o);
      task_dir = c.task_dir();
      runc_state = c.runc_state();
      cgroups = cgroup_dirs(c.cgroups_path());

      // The task dir: init.pid names a live process, the bundle's
      // config.json carries the annotations and the cgroup asked for.
      init = c.init_pid();
      REQUIRE(init > 0);
      CHECK(process_state(init) != 0);
      CHECK(read_text(fs::path("/proc") / std::to_string(init) / "cmdline") ==
            std::string("sleep\0"
                        "100000\0",
                        13));
      const json spec = json::parse(read_text(task_dir / "config.json"));
      CHECK(spec["annotations"]["io.kubernetes.cri.container-name"] == "web");
      CHECK(spec["annotations"]["io.kubernetes.cri.sandbox-name"] == "web-0");
      CHECK(spec["linux"]["cgroupsPath"] == c.cgroups_path());
      // ctr 1.6 writes a `--label` into the spec's annotations too; the
      // kubelet's own keys are not there (a CRI-made container has them in
      // containerd's metadata only).
      CHECK(spec["annotations"]["blade.test/label"] == "yes");
      CHECK_FALSE(spec["annotations"].contains("io.kubernetes.pod.name"));

      // The shim's options name the runc root it was given.
      CHECK(json::parse(read_text(task_dir / "options.json")) == json{{"root", d.runc_root()}});

      // The shim's runc state, in the private runc root: the same pid, its
      // start time as /proc says, the annotations as "k=v" labels.
      const json st = json::parse(read_text(runc_state));
      CHECK(st["init_process_pid"] == init);
      CHECK(blade::plugins::proc::start_time_of(init) ==
            st["init_process_start"].get<std::uint64_t>());
      const auto labels = st["config"]["labels"];
      CHECK(std::find(labels.begin(), labels.end(), "io.kubernetes.cri.container-name=web") !=
            labels.end());
      CHECK(std::find(labels.begin(), labels.end(), "bundle=" + task_dir.string()) != labels.end());

      // Its cgroup holds the init, with the quota and limit asked for.
      CHECK(in_procs(c.cgroup_dir("cpu"), init));
      if (cgroup_v2_only()) {
        CHECK(read_text(c.cgroup_dir("cpu") / "cpu.max") == "50000 100000\n");
        CHECK(read_text(c.cgroup_dir("memory") / "memory.max") == "67108864\n");
      } else {
        CHECK(read_text(c.cgroup_dir("cpu") / "cpu.cfs_quota_us") == "50000\n");
        CHECK(read_text(c.cgroup_dir("memory") / "memory.limit_in_bytes") == "67108864\n");
      }

      // A second process inside, found on the host by its command line.
      exec_pid = c.exec_detached("second", {"sleep", "200001"});
      REQUIRE(exec_pid > 0);
      CHECK(exec_pid != init);
      CHECK(in_procs(c.cgroup_dir("memory"), exec_pid));

      c.remove();
      CHECK_FALSE(fs::exists(task_dir));
      CHECK_FALSE(fs::exists(runc_state));
      CHECK(process_state(init) == 0);
      CHECK(process_state(exec_pid) == 0);
      for (const auto &dir : cgroups)
        CHECK_MESSAGE(!fs::exists(dir), dir);
    }
    CHECK(mounts_under(daemon_dir).empty());
  }
  // The daemon and its shims are gone, its dir with them.
  CHECK(pids_with_arg(socket).empty());
  CHECK(::kill(daemon_pid, 0) != 0);
  CHECK_FALSE(fs::exists(daemon_dir));
  CHECK(mounts_under(daemon_dir).empty());
  for (const auto &dir : cgroups)  // the daemon's cgroup parent
    CHECK_MESSAGE(!fs::exists(dir.parent_path()), dir.parent_path());
}

TEST_CASE("a container its test did not remove goes with the daemon") {
  TempDir tmp("blade-oci");
  build_busybox_oci_image(tmp / "busybox.tar", "blade.test/busybox:1");
  fs::path daemon_dir;
  std::string socket;
  pid_t init = 0;
  std::vector<fs::path> cgroups;
  fs::path shim_socket;
  {
    ContainerdDaemon d;
    daemon_dir = d.dir();
    socket = d.socket();
    ContainerdImage image(d, "k8s.io", tmp / "busybox.tar", "blade.test/busybox:1");
    // Run by hand, as a test that failed before its cleanup would leave it.
    const std::string cgroup = d.cgroup_parent() + "/leftover";
    REQUIRE(d.ctr("k8s.io", {"run", "-d", "--null-io", "--runc-root", d.runc_root(), "--cgroup",
                             cgroup, image.ref(), "leftover", "sleep", "100000"}) == 0);
    cgroups = cgroup_dirs(cgroup);
    const fs::path task =
        fs::path(d.state()) / "io.containerd.runtime.v2.task" / "k8s.io" / "leftover";
    init = std::stoi(read_text(task / "init.pid"));
    const std::string address = read_text(task / "address");
    REQUIRE(address.rfind("unix://", 0) == 0);
    shim_socket = address.substr(7);
    REQUIRE(fs::exists(shim_socket));
    REQUIRE(process_state(init) != 0);
    REQUIRE(!mounts_under(daemon_dir).empty());
  }
  CHECK(process_state(init) == 0);
  CHECK(pids_with_arg(socket).empty());
  CHECK_FALSE(fs::exists(shim_socket));
  CHECK(mounts_under(daemon_dir).empty());
  CHECK_FALSE(fs::exists(daemon_dir));
  for (const auto &dir : cgroups) {
    CHECK_MESSAGE(!fs::exists(dir), dir);
    CHECK_MESSAGE(!fs::exists(dir.parent_path()), dir.parent_path());
  }
}
