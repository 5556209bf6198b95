// "No fault left behind" across a real crash: a process holding active
// faults is SIGKILLed; the next bladed start (and `bladed recover`) rolls
// them back from the store alone.
#include <signal.h>

#include <fstream>
#include <sstream>

#include <doctest/doctest.h>

#include "../support/child_process.hpp"
#include "engine.hpp"

namespace fs = std::filesystem;
using namespace blade;
using blade::test::ChildProcess;
using blade::test::eventually;
using blade::test::TempDir;

namespace {

std::vector<std::string> lines(const fs::path &p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

struct Crashed {
  TempDir dir{"blade-crash"};
  std::vector<fs::path> markers;
  std::vector<std::string> uids;

  Crashed() {
    fs::create_directories(dir / "plugins");
    fs::copy_file(fs::path(BLADE_TEST_PLUGIN_DIR) / "c_marker.so", dir / "plugins" / "c_marker.so");
    fs::permissions(dir / "plugins" / "c_marker.so", fs::perms(0755));
    markers = {dir / "marker-1", dir / "marker-2"};
    ChildProcess holder({BLADE_FAULT_HOLDER, (dir / "blade.db").string(),
                         (dir / "plugins").string(), (dir / "state").string(),
                         (dir / "uids").string(), markers[0].string(), markers[1].string()},
                        {}, (dir / "holder.log").string());
    REQUIRE(eventually([&] { return fs::exists(dir / "uids"); }));
    uids = lines(dir / "uids");
    REQUIRE(uids.size() == 2);
    holder.signal(SIGKILL);
    REQUIRE(holder.exit_code(std::chrono::seconds(5)) == -SIGKILL);
    // The faults outlived their daemon, and the store still calls them running.
    for (const auto &m : markers)
      REQUIRE(fs::exists(m));
    Store store(dir / "blade.db");
    for (const auto &uid : uids)
      REQUIRE(store.get_experiment(uid)->status == ExperimentStatus::Running);
  }

  std::vector<std::string> common_args() const {
    return {"--sqlite-path", (dir / "blade.db").string(),
            "--plugin-dir",  (dir / "plugins").string(),
            "--state-dir",   (dir / "state").string()};
  }

  void check_faults_gone() const {
    for (const auto &m : markers)
      CHECK_FALSE(fs::exists(m));
  }

  // Only once no bladed runs on the file: a running one holds its lock.
  void check_rolled_back() const {
    check_faults_gone();
    Store store(dir / "blade.db");
    for (const auto &uid : uids)
      CHECK(store.get_experiment(uid)->status == ExperimentStatus::Destroyed);
    int recovered = 0;
    for (const auto &a : store.list_audit(50))
      recovered += a.action == "experiment.recover" && a.outcome == "ok" && a.actor == "system";
    CHECK(recovered == 2);
  }
};

}  // namespace

TEST_CASE("after a SIGKILL, the next bladed start rolls back the faults before serving") {
  Crashed c;
  auto args = c.common_args();
  args.insert(args.begin(),
              {BLADE_BLADED_PATH, "--port", "0", "--port-file", (c.dir / "port").string()});
  ChildProcess bladed(args, {"BLADE_API_TOKEN=recovery-test-token"},
                      (c.dir / "bladed.log").string());
  REQUIRE(eventually([&] { return fs::exists(c.dir / "port"); }, std::chrono::seconds(20)));
  // The port file is written only after recovery, so this is already final.
  c.check_faults_gone();
  bladed.signal(SIGTERM);
  CHECK(bladed.exit_code(std::chrono::seconds(10)) == 0);
  // The store says it was recovery that rolled them back (SIGTERM found
  // nothing left to undo).
  c.check_rolled_back();
}

TEST_CASE("bladed recover rolls back the faults and exits") {
  Crashed c;
  auto args = c.common_args();
  args.insert(args.begin(), {BLADE_BLADED_PATH, "recover"});
  ChildProcess recover(args, {}, (c.dir / "recover.log").string());
  CHECK(recover.exit_code(std::chrono::seconds(20)) == 0);
  c.check_rolled_back();
}
