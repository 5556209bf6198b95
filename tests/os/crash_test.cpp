// A crash at a named failpoint of each os fault's create (BLADE_FAILPOINTS
// "<point>=kill": bladed SIGKILLs itself there), then a new bladed on the
// same state dir: its recovery must leave the host exactly as it was
// before the create (bytes, mode, owner, mtime; process state from /proc;
// no tmpfs file) and the experiment `destroyed`. Points before a step prove
// a record naming a step that never happened is undone harmlessly; points
// after it, that the step is undone. Also: a destroy given no restore
// record at all (the row's record wiped while bladed was down) finds the
// experiment's backup by its uid.
#include <signal.h>
#include <sqlite3.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "../support/eventually.hpp"
#include "../support/meminfo.hpp"
#include "../support/process_state.hpp"
#include "os_test_support.hpp"

namespace fs = std::filesystem;
using namespace blade::test;
using namespace blade::test::os;
using namespace std::chrono_literals;

namespace {

void set_mtime(const fs::path &p, long seconds) {
  const struct timeval tv[2] = {{seconds, 0}, {seconds, 0}};
  REQUIRE(::lutimes(p.c_str(), tv) == 0);
}

#ifdef BLADE_FAILPOINTS
// The uid of the only experiment the daemon lists ("" if not exactly one).
std::string only_uid(httplib::Client &c) {
  auto r = c.Get("/v1/experiments", auth());
  if (!r || r->status != 200) return "";
  auto items = json::parse(r->body)["data"]["items"];
  return items.size() == 1 ? items[0].value("uid", "") : "";
}

// Starts bladed with `point` armed to kill, sends the create (which never
// answers: bladed dies at the point), restarts bladed on the same state
// dir and returns the experiment's final status.
std::string crash_and_recover(BladedProcess &d, const json &body) {
  {
    auto c = d.client();
    auto r = post_json(c, "/v1/experiments", body);
    CHECK_FALSE(r);  // the connection died with bladed
  }
  REQUIRE(d.process->exit_code(10s) == -SIGKILL);
  d.restart();  // returns once recovery has run
  auto c = d.client();
  const std::string uid = only_uid(c);
  REQUIRE_FALSE(uid.empty());
  return wait_destroyed(c, uid, 10s);
}

BladedProcess armed(const std::string &point) {
  BladedOptions o = os_options();
  o.env = {"BLADE_FAILPOINTS=" + point + "=kill"};
  return BladedProcess(o);
}

json body_of(const std::string &target, const std::string &action, const json &flags) {
  return {{"target", target}, {"action", action}, {"flags", flags}};
}
#endif

}  // namespace

// The failpoints exist in test builds only (meson option failpoints).
#ifdef BLADE_FAILPOINTS

TEST_CASE("a crash inside a file fault's create leaves the file exactly as it was") {
  TempDir t("os-crash-file");
  const fs::path file = t / "data.conf";
  const fs::path moved = t / "elsewhere" / "data.conf";
  struct Case {
    std::string point, action;
    json flags;
  };
  const std::vector<Case> cases = {
      {"os.file.add.after_create",
       "add",
       {{"filepath", (t / "new/sub/added").string()}, {"content", "x"}, {"auto-create-dir", true}}},
      {"os.file.append.after_write", "append", {{"filepath", file.string()}, {"content", "ERR\n"}}},
      {"os.file.chmod.before_chmod", "chmod", {{"filepath", file.string()}, {"mark", "000"}}},
      {"os.file.chmod.after_chmod", "chmod", {{"filepath", file.string()}, {"mark", "000"}}},
      {"os.file.delete.before_move", "delete", {{"filepath", file.string()}}},
      {"os.file.delete.after_move", "delete", {{"filepath", file.string()}}},
      {"os.file.move.after_move",
       "move",
       {{"filepath", file.string()}, {"target", moved.string()}, {"auto-create-dir", true}}},
  };
  for (const auto &k : cases) {
    CAPTURE(k.point);
    make_file(file, "key: value\nother: 1\n", 02640);
    set_mtime(file, 1000000000);
    const Snapshot before = snap(file);
    const Snapshot dir_before = snap(t.path());
    BladedProcess d = armed(k.point);
    CHECK(crash_and_recover(d, body_of("file", k.action, k.flags)) == "destroyed");
    CHECK(snap(file) == before);
    CHECK_FALSE(fs::exists(t / "new"));
    CHECK_FALSE(fs::exists(t / "elsewhere"));
    // Nothing else left beside the file (no temp, no partial copy).
    std::vector<std::string> names;
    for (const auto &e : fs::directory_iterator(t.path()))
      names.push_back(e.path().filename().string());
    CHECK(names == std::vector<std::string>{"data.conf"});
    CHECK(fs::is_empty(d.dir / "state" / "plugins" / "os" / "backups"));
    CHECK(fs::is_empty(d.dir / "state" / "plugins" / "os" / "claims"));
    CHECK(snap(t.path()).mode == dir_before.mode);
  }
}

TEST_CASE("a crash inside a script fault's create leaves the script byte for byte as it was") {
  TempDir t("os-crash-script");
  const fs::path script = t / "run.sh";
  for (const std::string point : {"os.script.delay.before_rename", "os.script.delay.after_rename",
                                  "os.script.delay.after_backup"}) {
    CAPTURE(point);
    make_file(script, "#!/bin/sh\nwork() {\n  echo working\n}\nwork\n", 0750);
    set_mtime(script, 1100000000);
    const Snapshot before = snap(script);
    BladedProcess d = armed(point);
    CHECK(crash_and_recover(d, body_of("script", "delay",
                                       {{"file", script.string()},
                                        {"function-name", "work"},
                                        {"time", 2000}})) == "destroyed");
    CHECK(snap(script) == before);
    CHECK(fs::directory_iterator(t.path()) != fs::directory_iterator());
    CHECK(std::distance(fs::directory_iterator(t.path()), fs::directory_iterator()) == 1);
  }
}

TEST_CASE("a crash inside process stop's create leaves no process stopped") {
  for (const std::string point : {"os.process.stop.before_signal", "os.process.stop.after_signal"}) {
    CAPTURE(point);
    Sleepers s;
    const pid_t child = s.start().pid();
    REQUIRE(eventually([&] { return running(process_state(child)); }));
    BladedProcess d = armed(point);
    CHECK(crash_and_recover(d, body_of("process", "stop", {{"process", s.name}})) == "destroyed");
    CHECK(eventually([&] { return running(process_state(child)); }, 5s));
  }
}

TEST_CASE("a crash inside mem load mode=cache leaves no tmpfs file") {
  const std::int64_t available = blade::test::meminfo_mb("MemAvailable");
  BladedProcess d = armed("os.mem.load.after_cache_file");
  auto c = d.client();
  CHECK_FALSE(post_json(c, "/v1/experiments",
                        body_of("mem", "load",
                                {{"reserve", std::to_string(available - 32)},
                                 {"rate", "64"},
                                 {"mode", "cache"}})));
  REQUIRE(d.process->exit_code(10s) == -SIGKILL);
  // The file the fault made outlived bladed; its name comes from the uid.
  std::vector<fs::path> left;
  for (const auto &e : fs::directory_iterator("/dev/shm"))
    if (e.path().filename().string().starts_with("blade-mem-")) left.push_back(e.path());
  d.restart();
  auto c2 = d.client();
  const std::string uid = only_uid(c2);
  REQUIRE_FALSE(uid.empty());
  CHECK(wait_destroyed(c2, uid, 10s) == "destroyed");
  CHECK(std::find(left.begin(), left.end(), fs::path("/dev/shm/blade-mem-" + uid)) != left.end());
  CHECK_FALSE(fs::exists("/dev/shm/blade-mem-" + uid));
}

#endif  // BLADE_FAILPOINTS

TEST_CASE("a destroy given no restore record finds the backup by the experiment's uid") {
  TempDir t("os-crash-norecord");
  const fs::path file = t / "keep.me";
  make_file(file, "precious\n", 0604);
  set_mtime(file, 1200000000);
  const Snapshot before = snap(file);
  BladedProcess d(os_options());
  std::string uid;
  {
    auto c = d.client();
    auto del = create(c, "file", "delete", {{"filepath", file.string()}});
    REQUIRE_MESSAGE(del.status == 201, del.body.dump());
    uid = del.uid();
  }
  REQUIRE_FALSE(fs::exists(file));
  d.crash();
  // As a crash before the host stored any record would leave the row:
  // created, with no record. Only the experiment's uid is left to go by.
  {
    sqlite3 *db = nullptr;
    REQUIRE(sqlite3_open((d.dir / "state" / "blade.db").c_str(), &db) == SQLITE_OK);
    const std::string sql = "UPDATE experiments SET restore_json = '', status = 'created' "
                            "WHERE uid = '" + uid + "'";
    char *err = nullptr;
    CHECK(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) == SQLITE_OK);
    CHECK(sqlite3_changes(db) == 1);
    sqlite3_free(err);
    sqlite3_close(db);
  }
  d.restart();
  auto c = d.client();
  CHECK(wait_destroyed(c, uid, 10s) == "destroyed");
  CHECK(snap(file) == before);
  CHECK_FALSE(fs::exists(backup_dir(d, uid)));
}
