// cri faults in a container of a real containerd, through a real bladed
// with the built cri.so: the test's own containerd (private root, state and
// socket), the busybox image it builds, a container in namespace k8s.io
// with kubelet-style labels. Faults are aimed by container-name and by id
// prefix, their effect read on the host (/proc of the container's
// processes), undone by destroy; a container of another containerd
// namespace is not found. Nothing is left afterwards.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../../compat/host_probes.hpp"
#include "../../server/bladed_process.hpp"
#include "../../server/experiment_calls.hpp"
#include "../../support/containerd_daemon.hpp"
#include "../../support/eventually.hpp"
#include "../../support/file_text.hpp"
#include "../../support/oci_image.hpp"
#include "../../support/process_state.hpp"
#include "../../support/temp_dir.hpp"

using namespace blade::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char *kImage = "blade.test/busybox:1";

// A bladed with only cri.so, told where this containerd's shims keep their
// runc state (the private runc root) and where blade-cri-helper is. The
// state dir itself comes with each request (container-state-root).
BladedOptions cri_options(const ContainerdDaemon &d, const TempDir &tmp) {
  const fs::path config = tmp / "bladed.yaml";
  std::ofstream(config) << "plugins:\n"
                           "  cri:\n"
                           "    containerd_runc_root: "
                        << d.runc_root()
                        << "\n"
                           "    helper_path: "
                        << BLADE_CRI_HELPER_PATH << "\n";
  return only_plugin(fs::path(BLADE_BUILT_PLUGIN_DIR) / "cri.so", {"--config", config.string()});
}

// The value at a JSON pointer ("/data/result/id"); null when absent, so a
// changed answer fails a CHECK instead of aborting the test.
json at(const json &j, const std::string &pointer) {
  return j.value(json::json_pointer(pointer), json());
}

json merged(json a, const json &b) {
  a.update(b);
  return a;
}

// The container flags naming this containerd; `more` adds the selector and
// the fault's own flags.
json flags(const ContainerdDaemon &d, json more) {
  return merged({{"container-runtime", "containerd"}, {"container-state-root", d.state()}}, more);
}

json cri_body(const std::string &target, const std::string &action, json f) {
  return {{"scope", "cri"}, {"target", target}, {"action", action}, {"flags", std::move(f)}};
}

// What the container's own processes see at `path` (its mount namespace's
// root, through /proc/<init>/root).
fs::path inside(pid_t init, const std::string &path) {
  return fs::path("/proc") / std::to_string(init) / "root" / path.substr(1);
}

// Everything a test needs, made in order and undone in reverse: the image
// tarball, a private containerd with the image in k8s.io, the pod's
// container "web" (a second sleep inside it to stop), and a bladed with
// cri.so.
struct Rig {
  TempDir tmp{"blade-cri-containerd"};
  fs::path tar = busybox_tar(tmp);
  ContainerdDaemon d;
  ContainerdImage image{d, "k8s.io", tar, kImage};
  ContainerdContainerOptions o = web_options(image.ref());
  ContainerdContainer c{d, o};
  pid_t init = c.init_pid();
  // The process to stop: a second sleep inside (the container's init, pid 1
  // of its pid namespace, ignores SIGSTOP sent from inside it).
  pid_t target = c.exec_detached("stopme", {"sleep", "200001"});
  BladedProcess bladed{cri_options(d, tmp)};

  static fs::path busybox_tar(const TempDir &dir) {
    const fs::path tar = dir / "busybox.tar";
    build_busybox_oci_image(tar, kImage);
    return tar;
  }
  static ContainerdContainerOptions web_options(const std::string &image) {
    ContainerdContainerOptions o;
    o.image = image;
    o.id = random_container_id();
    return o;
  }
};

// What a container leaves on the host while it exists.
struct Traces {
  fs::path task_dir;
  std::vector<fs::path> cgroups;
  explicit Traces(const ContainerdContainer &c)
      : task_dir(c.task_dir()), cgroups(cgroup_dirs(c.cgroups_path())) {}
};

// Called once a rig is gone: no task dir, no cgroup dir of its container.
void check_nothing_left(const Traces &t) {
  CHECK_FALSE(fs::exists(t.task_dir));
  for (const auto &dir : t.cgroups)
    CHECK_MESSAGE(!fs::exists(dir), dir);
}

// After its last destroy, no helper (nor anything else) of bladed runs.
void check_no_helper(const BladedProcess &bladed) {
  CHECK(eventually([&] { return compat::process_tree(bladed.process->pid()).size() == 1; }));
}

}  // namespace

TEST_CASE(
    "process stop in a containerd container named by its kubelet container name, then by its pod's "
    "labels") {
  std::optional<Traces> traces;
  {
    Rig r;
    traces.emplace(r.c);
    REQUIRE(r.init > 0);
    REQUIRE(r.target > 0);
    REQUIRE(eventually([&] { return process_state(r.target) == 'S'; }));
    auto http = r.bladed.client();

    const Answer stop =
        create(http, cri_body("process", "stop",
                              flags(r.d, {{"container-name", "web"}, {"process", "200001"}})));
    REQUIRE_MESSAGE(stop.status == 201, stop.body.dump(), "\n", read_text(r.bladed.log_file()));
    CHECK(at(stop.body, "/data/result/container/runtime") == "containerd");
    CHECK(at(stop.body, "/data/result/container/id") == r.c.id());
    CHECK(at(stop.body, "/data/result/container/name") == "web");
    CHECK(at(stop.body, "/data/result/container/init_pid") == r.init);
    // Stopped as the host sees it, and nothing else in the container.
    CHECK(eventually([&] { return process_state(r.target) == 'T'; }));
    CHECK(process_state(r.init) != 'T');

    check_destroyed(http, stop.uid());
    CHECK(eventually([&] { return process_state(r.target) == 'S'; }));

    // The same by the pod's kubelet labels, which containerd keeps on disk
    // only as its CRI annotations (sandbox-name, sandbox-namespace).
    const Answer by_pod = create(
        http,
        cri_body("process", "stop",
                 flags(r.d, {{"container-label-selector",
                              "io.kubernetes.pod.name=web-0,io.kubernetes.pod.namespace=default"},
                             {"process", "200001"}})));
    REQUIRE_MESSAGE(by_pod.status == 201, by_pod.body.dump());
    CHECK(at(by_pod.body, "/data/result/container/id") == r.c.id());
    CHECK(eventually([&] { return process_state(r.target) == 'T'; }));
    check_destroyed(http, by_pod.uid());
    CHECK(eventually([&] { return process_state(r.target) == 'S'; }));
    check_no_helper(r.bladed);
  }
  check_nothing_left(*traces);
}

TEST_CASE("file delete in a containerd container named by a prefix of its id") {
  std::optional<Traces> traces;
  {
    Rig r;
    traces.emplace(r.c);
    REQUIRE(r.init > 0);
    auto http = r.bladed.client();
    const fs::path victim = inside(r.init, kOciVictimPath);
    const std::string bytes = read_text(victim);
    REQUIRE(!bytes.empty());
    struct stat before {};
    REQUIRE(::stat(victim.c_str(), &before) == 0);

    const Answer del = create(http, cri_body("file", "delete",
                                             flags(r.d, {{"container-id", r.c.id().substr(0, 12)},
                                                         {"filepath", kOciVictimPath}})));
    REQUIRE_MESSAGE(del.status == 201, del.body.dump(), "\n", read_text(r.bladed.log_file()));
    CHECK(at(del.body, "/data/result/container/id") == r.c.id());
    // Gone inside the container (its overlay root), where the fault ran.
    CHECK_FALSE(fs::exists(victim));

    check_destroyed(http, del.uid());
    REQUIRE(fs::exists(victim));
    CHECK(read_text(victim) == bytes);
    struct stat after {};
    REQUIRE(::stat(victim.c_str(), &after) == 0);
    CHECK(after.st_mode == before.st_mode);
    CHECK(after.st_uid == before.st_uid);
    check_no_helper(r.bladed);
  }
  check_nothing_left(*traces);
}

TEST_CASE("a container of another containerd namespace: not found from k8s.io, found in its own") {
  std::optional<Traces> traces;
  {
    Rig r;
    auto http = r.bladed.client();
    ContainerdContainerOptions other = Rig::web_options(r.image.ref());
    other.ns = "blade-other";
    other.annotations["io.kubernetes.cri.container-name"] = "db";
    // containerd keeps images per namespace.
    ContainerdImage other_image(r.d, other.ns, r.tar, kImage);
    ContainerdContainer elsewhere(r.d, other);
    traces.emplace(elsewhere);
    const pid_t other_target = elsewhere.exec_detached("stopme", {"sleep", "200002"});
    REQUIRE(other_target > 0);
    REQUIRE(eventually([&] { return process_state(other_target) == 'S'; }));

    for (const json &selector :
         {json{{"container-name", "db"}}, json{{"container-id", other.id.substr(0, 12)}}}) {
      const Answer miss = create(
          http, cri_body("process", "stop", flags(r.d, merged(selector, {{"process", "200002"}}))));
      INFO(miss.body.dump());
      // No container matching is a 422 FAILED_PRECONDITION like a process
      // that is not there (the HTTP contract keeps 404 for routes, uids
      // and executors); nothing was tried on the host.
      CHECK(miss.status == 422);
      CHECK(miss.body.value("code", "") == "FAILED_PRECONDITION");
      // The message says what was looked at: the runtime, its state and
      // the namespace.
      CHECK(miss.message().find("containerd") != std::string::npos);
      CHECK(miss.message().find(r.d.state()) != std::string::npos);
      CHECK(miss.message().find("k8s.io") != std::string::npos);
    }
    CHECK(process_state(other_target) == 'S');

    // Named with its namespace, the same flags find it.
    const Answer stop = create(http, cri_body("process", "stop",
                                              flags(r.d, {{"container-name", "db"},
                                                          {"container-namespace", other.ns},
                                                          {"process", "200002"}})));
    REQUIRE_MESSAGE(stop.status == 201, stop.body.dump(), "\n", read_text(r.bladed.log_file()));
    CHECK(at(stop.body, "/data/result/container/id") == other.id);
    CHECK(eventually([&] { return process_state(other_target) == 'T'; }));
    CHECK(process_state(r.target) == 'S');  // web's sleep, in k8s.io, untouched
    check_destroyed(http, stop.uid());
    CHECK(eventually([&] { return process_state(other_target) == 'S'; }));
    check_no_helper(r.bladed);
  }
  check_nothing_left(*traces);
}

TEST_CASE("a dry run in a containerd container names it and changes nothing") {
  Rig r;
  REQUIRE(r.target > 0);
  auto http = r.bladed.client();
  const Answer dry =
      create(http, merged(cri_body("process", "stop",
                                   flags(r.d, {{"container-name", "web"}, {"process", "200001"}})),
                          {{"dry_run", true}}));
  INFO(dry.body.dump());
  REQUIRE(dry.status == 200);
  CHECK(at(dry.body, "/data/plan/container/id") == r.c.id());
  CHECK(process_state(r.target) == 'S');
  check_no_helper(r.bladed);
}

TEST_CASE("destroy after the containerd container was deleted: 200, and the result says so") {
  std::optional<Traces> traces;
  {
    Rig r;
    traces.emplace(r.c);
    auto http = r.bladed.client();
    const Answer del = create(
        http, cri_body("file", "delete",
                       flags(r.d, {{"container-name", "web"}, {"filepath", kOciVictimPath}})));
    REQUIRE_MESSAGE(del.status == 201, del.body.dump(), "\n", read_text(r.bladed.log_file()));
    REQUIRE_FALSE(fs::exists(inside(r.init, kOciVictimPath)));

    r.c.remove();  // task killed and deleted, container and snapshot deleted
    REQUIRE_FALSE(fs::exists(r.c.task_dir()));

    const Answer gone = destroy(http, del.uid());
    INFO(gone.body.dump());
    CHECK(gone.status == 200);
    // Either the destroy found the container gone and reports it, or the
    // experiment had already ended with the container (its helper died in
    // the container's pid namespace, and the plugin told bladed why): the
    // record says "deleted" and names the container either way.
    const json &x = gone.body["data"];
    if (x.value("status", "") == "destroyed") {
      CHECK(at(gone.body, "/data/destroy_result/container") == "deleted");
      CHECK(at(gone.body, "/data/destroy_result/id") == r.c.id());
      CHECK(at(gone.body, "/data/destroy_result/vanished").is_string());
    } else {
      CHECK(x.value("status", "") == "failed");
      CHECK(x.value("error", "").find("was deleted") != std::string::npos);
      CHECK(x.value("error", "").find(r.c.id()) != std::string::npos);
    }
    // The deleted file's backup went with the container: nothing of it is
    // kept in bladed's state dir.
    const fs::path kept = r.bladed.dir / "state" / "plugins" / "cri" / "containers" / r.c.id();
    std::string listing;
    std::error_code ec;
    for (const auto &e : fs::recursive_directory_iterator(kept, ec))
      listing += e.path().string() + "\n";
    CHECK_MESSAGE(!fs::exists(kept), listing);
    check_no_helper(r.bladed);
  }
  check_nothing_left(*traces);
}
