// SIGKILL of bladed with faults active in a runc container, then a restart
// on the same state: the cpu load died with the daemon (its helper exits
// when the daemon's end of the socket closes), the deleted file stays
// deleted until the restart's recovery puts it back, and nothing is left.
// And a helper killed while bladed lives: a fault whose effect outlives the
// helper stays active for its destroy; one that lived in it ends.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "cri_runc_support.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace blade::test;
using namespace blade::test::cri;

TEST_CASE("bladed SIGKILLed with a file delete and a cpu load in a container: rolled back at restart") {
  const TwinContainer box("cri-recovery");
  const RuncContainer &ctr = box.ctr;
  const fs::path &path = box.twin.path;
  const fs::path inside = box.inside();

  BladedProcess d(cri_options());
  auto c = d.client();
  const auto del = create_in(c, ctr, "file", "delete", {{"filepath", path.string()}});
  REQUIRE_MESSAGE(del.status == 201, del.body.dump());
  const auto load = create_in(c, ctr, "cpu", "fullload", {{"cpu-percent", "100"}});
  REQUIRE_MESSAGE(load.status == 201, load.body.dump());
  REQUIRE_FALSE(fs::exists(inside));
  REQUIRE(cores_used(ctr, 1s) > 0.2);

  d.crash();
  // The load lived only in its helper, which goes with the daemon.
  CHECK(no_helper_left(d));
  CHECK(cores_used(ctr, 1s) < 0.05);
  CHECK_FALSE(fs::exists(inside));  // the deletion outlived the daemon

  d.restart();  // returns once recovery has run
  INFO("bladed's log: " << read_text(d.log_file()));  // shown on a failure
  CHECK(eventually([&] { return fs::exists(inside); }, 5s));
  CHECK(read_text(inside) == TwinContainer::kInside);
  auto c2 = d.client();
  for (const auto &uid : {del.uid(), load.uid()})
    CHECK(wait_destroyed(c2, uid, 10s) == "destroyed");
  check_nothing_left(d, del.uid());  // no helper, no backup of the delete
  CHECK(cores_used(ctr, 1s) < 0.05);
  CHECK_FALSE(has_blade_table(host_nft_tables()));
  d.process->signal(SIGTERM);
  CHECK(d.process->exit_code(10s) == 0);
}

TEST_CASE("a helper killed under a live bladed: a file delete stays to be undone, a cpu load ends") {
  const TwinContainer box("cri-helper-killed");
  const RuncContainer &ctr = box.ctr;
  const fs::path &path = box.twin.path;
  const fs::path inside = box.inside();
  BladedProcess d(cri_options());
  auto c = d.client();

  SUBCASE("file delete: the effect outlives its helper; destroy still restores it") {
    const auto a = create_in(c, ctr, "file", "delete", {{"filepath", path.string()}});
    REQUIRE_MESSAGE(a.status == 201, a.body.dump());
    REQUIRE_FALSE(fs::exists(inside));
    for (const pid_t h : helper_pids(d))
      ::kill(h, SIGKILL);
    CHECK(no_helper_left(d));
    std::this_thread::sleep_for(500ms);  // time for a wrong "ended" to land
    const auto x = experiment(c, a.uid());
    REQUIRE(x.is_object());
    CHECK(x["status"] == "running");
    CHECK_FALSE(fs::exists(inside));
    const auto gone = destroy(c, a.uid());
    CHECK_MESSAGE(gone.status == 200, gone.body.dump());
    CHECK(read_text(inside) == TwinContainer::kInside);
    check_nothing_left(d, a.uid());  // the restore's helper too
  }
  SUBCASE("cpu fullload: the load lived in its helper; the experiment ends saying so") {
    const auto a = create_in(c, ctr, "cpu", "fullload", {{"cpu-percent", "100"}});
    REQUIRE_MESSAGE(a.status == 201, a.body.dump());
    for (const pid_t h : helper_pids(d))
      ::kill(h, SIGKILL);
    const auto x = wait_status(c, a.uid(), "failed", 5s);
    REQUIRE(x.is_object());
    CHECK(x["status"] == "failed");
    CHECK(x.value("error", "").find("blade-cri-helper") != std::string::npos);
    CHECK(cores_used(ctr, 1s) < 0.05);
    CHECK(destroy(c, a.uid()).status == 200);
  }
  CHECK(no_helper_left(d));
}
