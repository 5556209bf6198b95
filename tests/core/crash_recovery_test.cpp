// "No fault left behind" across a real crash: a process holding active
// faults is SIGKILLed; the next bladed start (and `bladed recover`) rolls
// them back from the store alone.
#include <signal.h>

#include <fstream>
#include <sstream>

#include <doctest/doctest.h>
#include <httplib.h>

#include "../server/bladed_process.hpp"
#include "../support/child_process.hpp"
#include "engine.hpp"

namespace fs = std::filesystem;
using namespace blade;
using blade::test::BladedOptions;
using blade::test::BladedProcess;
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

// A bladed serving only test plugin `plugin`, armed to be killed (SIGKILL)
// by failpoint `failpoint`; its database is database(d).
BladedOptions dying_at(const std::string &plugin, const std::string &failpoint) {
  BladedOptions o = blade::test::with_test_plugins({plugin});
  o.env = {"BLADE_FAILPOINTS=" + failpoint + "=kill"};
  return o;
}

// Where bladed puts its database without --sqlite-path.
fs::path database(const BladedProcess &d) {
  return d.dir / "state" / "blade.db";
}

// Sends `d` (started with dying_at) a create of `target`, the test plugins'
// flag dir being d's own dir (where they write destroy-calls), and checks
// it died inside: no answer, then SIGKILL.
void die_in_create(BladedProcess &d, const std::string &target) {
  auto c = d.client();
  c.set_read_timeout(std::chrono::seconds(20));
  const nlohmann::json body = {
      {"target", target}, {"action", "noop"}, {"flags", {{"dir", d.dir.path().string()}}}};
  auto r = blade::test::post_json(c, "/v1/experiments", body);
  CHECK_FALSE(r);  // no answer: it died in the create
  REQUIRE(d.process->exit_code(std::chrono::seconds(10)) == -SIGKILL);
}

// `bladed recover` over the dirs and database of the dead `d`; its exit code.
int recover(const BladedProcess &d) {
  ChildProcess recover(
      {BLADE_BLADED_PATH, "recover", "--sqlite-path", database(d).string(), "--plugin-dir",
       (d.dir / "plugins").string(), "--state-dir", (d.dir / "state").string()},
      {}, (d.dir / "recover.log").string());
  return recover.exit_code(std::chrono::seconds(20)).value_or(-1);
}

// The one experiment row a crash in a create left: created.
Experiment only_created_row(const BladedProcess &d) {
  Store store(database(d));
  auto page = store.list_experiments({});
  REQUIRE(page.items.size() == 1);
  CHECK(page.items[0].status == ExperimentStatus::Created);
  return page.items[0];
}

}  // namespace

TEST_CASE("a create whose plugin writes ahead leaves no row when the daemon dies before the call") {
  BladedProcess d(dying_at("noop_a.so", "core.create.before_plugin"));
  die_in_create(d, "noopa");
  {
    Store store(database(d));
    CHECK(store.list_experiments({}).total == 0);  // nothing stored, nothing to undo
  }
  CHECK(recover(d) == 0);
  Store store(database(d));
  CHECK(store.list_experiments({}).total == 0);
  CHECK_FALSE(fs::exists(d.dir / "destroy-calls"));  // recovery had nothing to call
}

TEST_CASE("a plugin without the promise still has its created row rolled back after the crash") {
  BladedProcess d(dying_at("noop_staged.so", "core.create.before_plugin"));
  die_in_create(d, "noopstaged");
  const std::string uid = only_created_row(d).uid;
  CHECK(recover(d) == 0);
  Store store(database(d));
  CHECK(store.get_experiment(uid)->status == ExperimentStatus::Destroyed);
  CHECK(lines(d.dir / "destroy-calls") == std::vector<std::string>{uid});
}

TEST_CASE("a writes-ahead create's first record stores its row; recovery destroys it with it") {
  // Dies after the plugin returned: its save_restore inserted the row, the
  // final write never came.
  BladedProcess d(dying_at("write_ahead.so", "core.create.after_plugin"));
  die_in_create(d, "writeahead");
  const Experiment row = only_created_row(d);
  CHECK(row.restore_json == R"({"step":1})");
  const std::string uid = row.uid;
  CHECK(recover(d) == 0);
  Store store(database(d));
  auto e = store.get_experiment(uid);
  REQUIRE(e);
  CHECK(e->status == ExperimentStatus::Destroyed);
  // The destroy was handed the record written ahead.
  auto report = nlohmann::json::parse(e->destroy_result_json);
  CHECK(report["uid"] == uid);
  CHECK(report["had_restore"] == true);
  CHECK(lines(d.dir / "destroy-calls") == std::vector<std::string>{uid});
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
