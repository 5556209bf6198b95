// Never the wrong target. Files: bladed's own database (and state dir),
// /proc and /sys are refused for file and script faults with a field-named
// 400, dry runs included, and stay untouched. Processes: a matcher never
// picks the blade CLI that sent the request (its own arguments hold the
// pattern) nor bladed's children; an explicit pid naming one is a 400 on
// flags.pid. The CLI case runs the real `blade` binary.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <doctest/doctest.h>

#include "../cli/blade_run.hpp"
#include "../support/eventually.hpp"
#include "../support/meminfo.hpp"
#include "../support/process_state.hpp"
#include "os_test_support.hpp"

namespace fs = std::filesystem;
using namespace blade::test;
using namespace blade::test::os;
using namespace std::chrono_literals;

namespace {

void check_refused(const Answer &a, const std::string &field) {
  INFO(a.body.dump());
  CHECK(a.status == 400);
  CHECK(a.field() == field);
  CHECK(a.message().find("refused") != std::string::npos);
}

struct Inode {
  dev_t dev = 0;
  ino_t ino = 0;
  mode_t mode = 0;
  bool operator==(const Inode &) const = default;
};

Inode inode_of(const fs::path &p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return {};
  return {st.st_dev, st.st_ino, st.st_mode};
}

}  // namespace

TEST_CASE("bladed's database, /proc and /sys are refused for file and script faults") {
  BladedProcess d(os_options());
  auto c = d.client();
  const fs::path db = d.dir / "state" / "blade.db";
  REQUIRE(fs::exists(db));
  const Inode before = inode_of(db);

  for (bool dry : {false, true}) {
    CAPTURE(dry);
    check_refused(create(c, "file", "delete", {{"filepath", db.string()}}, dry), "flags.filepath");
    check_refused(create(c, "file", "chmod", {{"filepath", db.string()}, {"mark", "000"}}, dry),
                  "flags.filepath");
    check_refused(create(c, "file", "append", {{"filepath", db.string()}, {"content", "x"}}, dry),
                  "flags.filepath");
    check_refused(create(c, "file", "move",
                         {{"filepath", db.string()}, {"target", (d.dir / "elsewhere").string()}},
                         dry),
                  "flags.filepath");
    // The state dir holds the database: deleting it (or a dir above) is refused.
    check_refused(
        create(c, "file", "delete", {{"filepath", (d.dir / "state").string()}, {"force", true}},
               dry),
        "flags.filepath");
    check_refused(
        create(c, "file", "delete", {{"filepath", "/proc/" + std::to_string(::getpid()) + "/environ"}},
               dry),
        "flags.filepath");
    check_refused(create(c, "file", "append",
                         {{"filepath", "/proc/sys/vm/drop_caches"}, {"content", "3"}}, dry),
                  "flags.filepath");
    check_refused(create(c, "file", "chmod", {{"filepath", "/sys/kernel/mm"}, {"mark", "000"}}, dry),
                  "flags.filepath");
    check_refused(create(c, "file", "add", {{"filepath", "/sys/blade-test"}, {"content", "x"}}, dry),
                  "flags.filepath");
    check_refused(create(c, "script", "exit",
                         {{"file", "/proc/self/cmdline"}, {"function-name", "f"}}, dry),
                  "flags.file");
    check_refused(create(c, "script", "exit", {{"file", db.string()}, {"function-name", "f"}}, dry),
                  "flags.file");
  }
  CHECK(inode_of(db) == before);
  CHECK(fs::exists(d.dir / "state"));
  auto list = c.Get("/v1/experiments", auth());
  REQUIRE(list);
  CHECK(list->status == 200);
}

TEST_CASE("the blade CLI that asks for a process stop or kill is never its target") {
  BladedProcess d(os_options());
  BladeRunner blade({"BLADE_ENDPOINT=" + d.url(), "BLADE_API_TOKEN=" + kToken});
  Sleepers s;
  const pid_t sleeper = s.start().pid();

  // The CLI's own command line holds the pattern: `--process-cmd <name>`.
  auto stop = blade.run({"create", "process", "stop", "--process-cmd", s.name});
  INFO(stop.out << stop.err);
  REQUIRE(stop.code == 0);  // it exited normally: it was not stopped itself
  CHECK(eventually([&] { return process_state(sleeper) == 'T'; }, 5s));
  auto c = d.client();
  auto list = json::parse(c.Get("/v1/experiments", auth())->body)["data"]["items"];
  REQUIRE(list.size() == 1);
  const std::string uid = list[0]["uid"];
  auto destroyed = blade.run({"destroy", uid});
  CHECK(destroyed.code == 0);
  CHECK(eventually([&] { return running(process_state(sleeper)); }, 5s));

  auto kill = blade.run({"create", "process", "kill", "--process-cmd", s.name});
  INFO(kill.out << kill.err);
  CHECK(kill.code == 0);  // not SIGKILLed
  CHECK(s.children.front()->exit_code(5s) == -SIGKILL);
}

TEST_CASE("an explicit pid of a blade process or of bladed's child is a 400 on flags.pid") {
  BladedProcess d(os_options());
  auto c = d.client();

  // A process whose command line holds "blade".
  TempDir t("os-guard-pid");
  const fs::path exe = t / "blade-lookalike";
  fs::copy_file("/bin/sleep", exe);
  fs::permissions(exe, fs::perms(0755));
  ChildProcess lookalike({exe.string(), "300"});
  // Running is not enough: until its exec the child still has this test's
  // command line, which holds no "blade" (a race a loaded machine loses).
  const fs::path cmdline = "/proc/" + std::to_string(lookalike.pid()) + "/cmdline";
  REQUIRE(eventually([&] {
    return running(process_state(lookalike.pid())) &&
           read_text(cmdline).find("blade-lookalike") != std::string::npos;
  }));
  auto r = create(c, "process", "stop", {{"pid", lookalike.pid()}});
  INFO(r.body.dump());
  CHECK(r.status == 400);
  CHECK(r.field() == "flags.pid");
  CHECK(running(process_state(lookalike.pid())));
  // A matcher passes it over.
  auto byname = create(c, "process", "kill", {{"process", "blade-lookalike"}});
  CHECK(byname.status == 422);
  CHECK_FALSE(lookalike.exit_code(200ms).has_value());

  // bladed's own child: the memory holder of a mem load.
  const std::int64_t available = blade::test::meminfo_mb("MemAvailable");
  auto mem = create(c, "mem", "load", {{"reserve", std::to_string(available - 16)}});
  REQUIRE_MESSAGE(mem.status == 201, mem.body.dump());
  const int holder = mem.body["data"]["result"]["pid"];
  auto child = create(c, "process", "stop", {{"pid", holder}});
  INFO(child.body.dump());
  CHECK(child.status == 400);
  CHECK(child.field() == "flags.pid");
  CHECK(running(process_state(holder)));
  check_destroyed(c, mem.uid());
}
