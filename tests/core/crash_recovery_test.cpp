// "No fault left behind" across a real crash: a process holding active
// faults is SIGKILLed; the next bladed start (and `bladed recover`) rolls
// them back from the store alone.
#include <signal.h>

#include <fstream>
#include <sstream>

#include <doctest/doctest.h>
#include <httplib.h>

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

// A bladed over `dir` serving test plugin `plugin`, killed (SIGKILL) by
// failpoint `failpoint` inside the create of `target` it is sent.
void die_in_create(const TempDir &dir, const std::string &plugin, const std::string &target,
                   const std::string &failpoint) {
  fs::create_directories(dir / "plugins");
  fs::copy_file(fs::path(BLADE_TEST_PLUGIN_DIR) / plugin, dir / "plugins" / plugin);
  fs::permissions(dir / "plugins" / plugin, fs::perms(0755));
  ChildProcess bladed({BLADE_BLADED_PATH, "--port", "0", "--port-file", (dir / "port").string(),
                       "--sqlite-path", (dir / "blade.db").string(), "--plugin-dir",
                       (dir / "plugins").string(), "--state-dir", (dir / "state").string()},
                      {"BLADE_API_TOKEN=crash-test-token", "BLADE_FAILPOINTS=" + failpoint + "=kill"},
                      (dir / "bladed.log").string());
  REQUIRE(eventually([&] { return fs::exists(dir / "port"); }, std::chrono::seconds(20)));
  int port = 0;
  std::ifstream(dir / "port") >> port;
  REQUIRE(port > 0);
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(std::chrono::seconds(20));
  const nlohmann::json body = {
      {"target", target}, {"action", "noop"}, {"flags", {{"dir", dir.path().string()}}}};
  auto r = c.Post("/v1/experiments", {{"X-Api-Token", "crash-test-token"}}, body.dump(),
                  "application/json");
  CHECK_FALSE(r);  // no answer: it died in the create
  REQUIRE(bladed.exit_code(std::chrono::seconds(10)) == -SIGKILL);
}

// `bladed recover` over `dir`; its exit code.
int recover(const TempDir &dir) {
  ChildProcess recover({BLADE_BLADED_PATH, "recover", "--sqlite-path", (dir / "blade.db").string(),
                        "--plugin-dir", (dir / "plugins").string(), "--state-dir",
                        (dir / "state").string()},
                       {}, (dir / "recover.log").string());
  return recover.exit_code(std::chrono::seconds(20)).value_or(-1);
}

}  // namespace

TEST_CASE("a create whose plugin writes ahead leaves no row when the daemon dies before the call") {
  TempDir dir{"blade-crash-ahead"};
  die_in_create(dir, "noop_a.so", "noopa", "core.create.before_plugin");
  {
    Store store(dir / "blade.db");
    CHECK(store.list_experiments({}).total == 0);  // nothing stored, nothing to undo
  }
  CHECK(recover(dir) == 0);
  Store store(dir / "blade.db");
  CHECK(store.list_experiments({}).total == 0);
  CHECK_FALSE(fs::exists(dir / "destroy-calls"));  // recovery had nothing to call
}

TEST_CASE("a plugin without the promise still has its created row rolled back after the crash") {
  TempDir dir{"blade-crash-staged"};
  die_in_create(dir, "noop_staged.so", "noopstaged", "core.create.before_plugin");
  std::string uid;
  {
    Store store(dir / "blade.db");
    auto page = store.list_experiments({});
    REQUIRE(page.items.size() == 1);
    CHECK(page.items[0].status == ExperimentStatus::Created);
    uid = page.items[0].uid;
  }
  CHECK(recover(dir) == 0);
  Store store(dir / "blade.db");
  CHECK(store.get_experiment(uid)->status == ExperimentStatus::Destroyed);
  CHECK(lines(dir / "destroy-calls") == std::vector<std::string>{uid});
}

TEST_CASE("a writes-ahead create's first record stores its row; recovery destroys it with it") {
  TempDir dir{"blade-crash-record"};
  // Dies after the plugin returned: its save_restore inserted the row, the
  // final write never came.
  die_in_create(dir, "write_ahead.so", "writeahead", "core.create.after_plugin");
  std::string uid;
  {
    Store store(dir / "blade.db");
    auto page = store.list_experiments({});
    REQUIRE(page.items.size() == 1);
    CHECK(page.items[0].status == ExperimentStatus::Created);
    CHECK(page.items[0].restore_json == R"({"step":1})");
    uid = page.items[0].uid;
  }
  CHECK(recover(dir) == 0);
  Store store(dir / "blade.db");
  auto e = store.get_experiment(uid);
  REQUIRE(e);
  CHECK(e->status == ExperimentStatus::Destroyed);
  // The destroy was handed the record written ahead.
  auto report = nlohmann::json::parse(e->destroy_result_json);
  CHECK(report["uid"] == uid);
  CHECK(report["had_restore"] == true);
  CHECK(lines(dir / "destroy-calls") == std::vector<std::string>{uid});
}

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
