// The cri plugin's containerd resolver (no bladed) on a live containerd's
// own state: a container the test runs in its private containerd is found
// by kubelet name, pod label and id prefix with the pid and start time /proc
// shows; one of another containerd namespace is not; a deleted one is gone.
// One containerd and two containers serve every check, in order (the last
// deletes the container).
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include <doctest/doctest.h>
#include <blade/plugin.hpp>

#include "../../../plugins/common/proc_reader.hpp"
#include "../../../plugins/cri/src/resolver.hpp"
#include "../../support/containerd_daemon.hpp"
#include "../../support/file_text.hpp"
#include "../../support/oci_image.hpp"
#include "../../support/temp_dir.hpp"

using namespace blade::test;
using blade::cri::Container;
using blade::cri::find_by_id;
using blade::cri::find_container;
using blade::cri::RuntimeRoots;
using blade::cri::Selector;
namespace fs = std::filesystem;
namespace sdk = blade::sdk;

namespace {

constexpr const char *kImage = "blade.test/busybox:1";

Selector containerd_selector() {
  Selector s;
  s.runtime = "containerd";
  return s;
}

}  // namespace

TEST_CASE("the containerd resolver finds a live container of a real containerd") {
  TempDir tmp("blade-cri-resolve");
  build_busybox_oci_image(tmp / "busybox.tar", kImage);
  ContainerdDaemon d;
  ContainerdImage image(d, "k8s.io", tmp / "busybox.tar", kImage);
  ContainerdImage other_image(d, "blade-other", tmp / "busybox.tar", kImage);

  ContainerdContainerOptions o;
  o.image = image.ref();
  o.id = random_container_id();
  auto web = std::make_unique<ContainerdContainer>(d, o);
  ContainerdContainerOptions elsewhere = o;
  elsewhere.ns = "blade-other";
  elsewhere.id = random_container_id();
  elsewhere.annotations["io.kubernetes.cri.container-name"] = "db";
  ContainerdContainer db(d, elsewhere);

  RuntimeRoots roots;
  roots.containerd_state = d.state();
  roots.containerd_runc_root = d.runc_root();

  const pid_t init = web->init_pid();
  REQUIRE(init > 0);
  auto check_web = [&](const Container &c) {
    CHECK(c.runtime == "containerd");
    CHECK(c.id == o.id);
    CHECK(c.ns == "k8s.io");
    CHECK(c.name == "web");
    CHECK(c.init_pid == init);
    CHECK(blade::plugins::proc::start_time_of(init) == c.init_start);
    CHECK(c.bundle == web->task_dir().string());
  };

  {  // by the kubelet's container name
    Selector s = containerd_selector();
    s.name = "web";
    check_web(find_container(s, roots));
  }
  {  // by the pod's kubelet labels, derived from containerd's CRI annotations
    Selector s = containerd_selector();
    s.labels = {{"io.kubernetes.pod.name", "web-0"}, {"io.kubernetes.pod.namespace", "default"}};
    check_web(find_container(s, roots));
  }
  {  // by a prefix of its id
    Selector s = containerd_selector();
    s.id = o.id.substr(0, 12);
    check_web(find_container(s, roots));
  }
  {  // with the shim's runc root left at its default: the start time from /proc
    Selector s = containerd_selector();
    s.name = "web";
    RuntimeRoots defaults;
    defaults.containerd_state = d.state();
    check_web(find_container(s, defaults));
  }
  {  // a container of another namespace: not found from k8s.io, found in its own
    Selector s = containerd_selector();
    s.name = "db";
    try {
      find_container(s, roots);
      FAIL("found a container of namespace blade-other from k8s.io");
    } catch (const sdk::NotFound &e) {
      const std::string what = e.what();
      INFO(what);
      CHECK(what.find("containerd") != std::string::npos);
      CHECK(what.find(d.state()) != std::string::npos);
    }
    s.ns = "blade-other";
    const Container c = find_container(s, roots);
    CHECK(c.id == elsewhere.id);
    CHECK(c.init_pid == db.init_pid());
    CHECK(c.ns == "blade-other");
  }
  {  // destroy's lookup: the exact id while it runs, nothing once it is deleted
    const auto found = find_by_id("containerd", o.id, "k8s.io", roots);
    REQUIRE(found);
    check_web(*found);
    CHECK_FALSE(find_by_id("containerd", o.id.substr(0, 12), "k8s.io", roots));
    web.reset();
    CHECK_FALSE(find_by_id("containerd", o.id, "k8s.io", roots));
  }
}
