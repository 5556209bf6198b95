// The recovery scenario: with a `process stop` and a `file delete`
// active, bladed is SIGKILLed and started again on the same state; the
// process runs again and the file is back as it was.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <doctest/doctest.h>

#include "../support/eventually.hpp"
#include "../support/process_state.hpp"
#include "os_test_support.hpp"

namespace fs = std::filesystem;
using namespace blade::test;
using namespace blade::test::os;

namespace {

// A sleeping child under a name no other process has.
struct Sleeper {
  pid_t pid = -1;
  explicit Sleeper(const fs::path &program) {
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::execl(program.c_str(), program.filename().c_str(), "600", nullptr);
      ::_exit(127);
    }
  }
  ~Sleeper() {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
};

}  // namespace

TEST_CASE("process stop and file delete survive a SIGKILLed bladed only until it starts again") {
  TempDir t("os-recovery");
  const std::string name = "bladerec" + std::to_string(::getpid() % 100000);
  fs::copy_file("/bin/sleep", t / name);
  fs::permissions(t / name, fs::perms(0755));
  Sleeper sleeper(t / name);
  REQUIRE(eventually([&] { return blade::test::process_state(sleeper.pid) == 'S'; }));
  const fs::path file = t / "config.yaml";
  make_file(file, "key: value\n", 0604);
  const Snapshot before = snap(file);

  BladedProcess first(os_options());
  auto c = first.client();
  auto stop = create(c, "process", "stop", {{"process", name}});
  REQUIRE_MESSAGE(stop.status == 201, stop.body.dump());
  auto del = create(c, "file", "delete", {{"filepath", file.string()}});
  REQUIRE_MESSAGE(del.status == 201, del.body.dump());
  REQUIRE(eventually([&] { return blade::test::process_state(sleeper.pid) == 'T'; }));
  REQUIRE_FALSE(fs::exists(file));

  first.process->signal(SIGKILL);
  REQUIRE(first.process->exit_code(std::chrono::seconds(10)) == -SIGKILL);
  CHECK(blade::test::process_state(sleeper.pid) == 'T');  // both faults outlived the daemon
  CHECK_FALSE(fs::exists(file));

  first.restart();  // returns once recovery has run
  CHECK(eventually([&] { return blade::test::process_state(sleeper.pid) == 'S'; },
                   std::chrono::seconds(5)));
  CHECK(snap(file) == before);
  auto c2 = first.client();
  for (const auto &uid : {stop.uid(), del.uid()}) {
    auto got = c2.Get(("/v1/experiments/" + uid).c_str(), auth());
    REQUIRE(got);
    CHECK(json::parse(got->body)["data"]["status"] == "destroyed");
  }
  first.process->signal(SIGTERM);
  CHECK(first.process->exit_code(std::chrono::seconds(10)) == 0);
}
