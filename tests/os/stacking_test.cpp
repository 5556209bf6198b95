// Two active faults on one resource are refused (409 ALREADY_EXISTS naming
// the active experiment), because their destroys restore correctly only in
// one order: chmod 000 + chmod 777 destroyed in create order left 000, and
// append + delete left the appended bytes. Once the first is destroyed the
// second goes through. The claim lives under the state dir, so a bladed
// started again while the first fault is still in place refuses too.
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include <doctest/doctest.h>

#include "../support/eventually.hpp"
#include "../support/process_state.hpp"
#include "os_test_support.hpp"

namespace fs = std::filesystem;
using namespace blade::test;
using namespace blade::test::os;
using namespace std::chrono_literals;

namespace {

// A 409 whose message names `uid` as the holder, and starts with the flag
// (the API lists field details for 400s only).
void check_held(const Answer &a, const std::string &uid, const std::string &field) {
  INFO(a.body.dump());
  CHECK(a.status == 409);
  CHECK(a.body["code"] == "ALREADY_EXISTS");
  CHECK(a.message().find(uid) != std::string::npos);
  CHECK(a.message().rfind(field.substr(std::string("flags.").size()) + ": ", 0) == 0);
}

}  // namespace

TEST_CASE("two faults on one file are refused until the first is destroyed") {
  BladedProcess d(os_options());
  auto c = d.client();
  TempDir t("os-stack");
  const fs::path file = t / "app.conf";
  make_file(file, "k=v\n", 0640);
  const Snapshot before = snap(file);

  SUBCASE("chmod + chmod") {
    auto first = create(c, "file", "chmod", {{"filepath", file.string()}, {"mark", "000"}});
    REQUIRE_MESSAGE(first.status == 201, first.body.dump());
    check_held(create(c, "file", "chmod", {{"filepath", file.string()}, {"mark", "777"}}),
               first.uid(), "flags.filepath");
    // The dry run says so: the API answers a dry run's non-400 refusal
    // with 200 and the plugin's message as its note.
    auto dry = create(c, "file", "chmod", {{"filepath", file.string()}, {"mark", "777"}}, true);
    CHECK(dry.status == 200);
    CHECK(dry.body["data"].value("note", "").find(first.uid()) != std::string::npos);
    CHECK((snap(file).mode & 07777) == 0);
    check_destroyed(c, first.uid());
    CHECK(snap(file) == before);
    auto second = create(c, "file", "chmod", {{"filepath", file.string()}, {"mark", "777"}});
    REQUIRE_MESSAGE(second.status == 201, second.body.dump());
    check_destroyed(c, second.uid());
    CHECK(snap(file) == before);
  }
  SUBCASE("append + delete, and a delete of the dir above") {
    auto first = create(c, "file", "append", {{"filepath", file.string()}, {"content", "x\n"}});
    REQUIRE_MESSAGE(first.status == 201, first.body.dump());
    check_held(create(c, "file", "delete", {{"filepath", file.string()}}), first.uid(),
               "flags.filepath");
    // Deleting the directory would take the appended file along.
    check_held(create(c, "file", "delete", {{"filepath", t.path().string()}, {"force", true}}),
               first.uid(), "flags.filepath");
    // A path spelled another way (through a symlinked dir) is the same file.
    fs::create_directory_symlink(t.path(), t / "link");
    check_held(create(c, "file", "chmod",
                      {{"filepath", (t / "link" / "app.conf").string()}, {"mark", "600"}}),
               first.uid(), "flags.filepath");
    CHECK(fs::exists(file));
    check_destroyed(c, first.uid());
    CHECK(snap(file) == before);
    auto second = create(c, "file", "delete", {{"filepath", file.string()}});
    REQUIRE_MESSAGE(second.status == 201, second.body.dump());
    CHECK_FALSE(fs::exists(file));
    check_destroyed(c, second.uid());
    CHECK(snap(file) == before);
  }
  SUBCASE("script on a file a move holds") {
    const fs::path script = t / "run.sh";
    make_file(script, "f() {\n  true\n}\n", 0755);
    fs::create_directories(t / "away");  // move's target is the directory to move into
    auto first = create(c, "file", "move",
                        {{"filepath", script.string()}, {"target", (t / "away").string()}});
    REQUIRE_MESSAGE(first.status == 201, first.body.dump());
    make_file(script, "f() {\n  true\n}\n", 0755);  // a newcomer at the old name
    check_held(create(c, "script", "exit", {{"file", script.string()}, {"function-name", "f"}}),
               first.uid(), "flags.file");
    fs::remove(script);
    check_destroyed(c, first.uid());
  }
}

TEST_CASE("two stops of one process are refused until the first is destroyed") {
  BladedProcess d(os_options());
  auto c = d.client();
  Sleepers s;
  const pid_t child = s.start().pid();
  auto first = create(c, "process", "stop", {{"pid", child}});
  REQUIRE_MESSAGE(first.status == 201, first.body.dump());
  CHECK(eventually([&] { return process_state(child) == 'T'; }, 5s));
  check_held(create(c, "process", "stop", {{"process", s.name}}), first.uid(), "flags.process");
  check_destroyed(c, first.uid());
  CHECK(eventually([&] { return running(process_state(child)); }, 5s));
  auto second = create(c, "process", "stop", {{"process", s.name}});
  REQUIRE_MESSAGE(second.status == 201, second.body.dump());
  CHECK(eventually([&] { return process_state(child) == 'T'; }, 5s));
  check_destroyed(c, second.uid());
  CHECK(eventually([&] { return running(process_state(child)); }, 5s));
}

TEST_CASE("a bladed started again while a fault is still in place refuses a second one") {
  TempDir t("os-stack-restart");
  const fs::path file = t / "data";
  make_file(file, "original\n", 0600);
  const Snapshot before = snap(file);
  BladedProcess d(os_options());
  std::string uid;
  {
    auto c = d.client();
    auto del = create(c, "file", "delete", {{"filepath", file.string()}});
    REQUIRE_MESSAGE(del.status == 201, del.body.dump());
    uid = del.uid();
  }
  d.crash();
  // Someone put a new file where the deleted one was: recovery will not
  // overwrite it, so the delete stays in place (and its claim with it).
  spit(file, "newcomer\n");
  d.restart();
  auto c = d.client();
  const json x = experiment(c, uid);
  REQUIRE(x.is_object());
  CHECK(x["status"] != "destroyed");
  check_held(create(c, "file", "chmod", {{"filepath", file.string()}, {"mark", "000"}}), uid,
             "flags.filepath");
  fs::remove(file);
  check_destroyed(c, uid);
  CHECK(snap(file) == before);
  auto now = create(c, "file", "chmod", {{"filepath", file.string()}, {"mark", "000"}});
  REQUIRE_MESSAGE(now.status == 201, now.body.dump());
  check_destroyed(c, now.uid());
  CHECK(snap(file) == before);
}
