// The recovery scenario: with a `process stop` and a `file delete`
// active, bladed is SIGKILLed and started again on the same state; the
// process runs again and the file is back as it was.
#include <signal.h>
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

TEST_CASE("process stop and file delete survive a SIGKILLed bladed only until it starts again") {
  TempDir t("os-recovery");
  Sleepers sleepers;
  const pid_t sleeper = sleepers.start().pid();
  REQUIRE(eventually([&] { return blade::test::process_state(sleeper) == 'S'; }));
  const fs::path file = t / "config.yaml";
  make_file(file, "key: value\n", 0604);
  const Snapshot before = snap(file);

  BladedProcess first(os_options());
  auto c = first.client();
  auto stop = create(c, "process", "stop", {{"process", sleepers.name}});
  REQUIRE_MESSAGE(stop.status == 201, stop.body.dump());
  auto del = create(c, "file", "delete", {{"filepath", file.string()}});
  REQUIRE_MESSAGE(del.status == 201, del.body.dump());
  REQUIRE(eventually([&] { return blade::test::process_state(sleeper) == 'T'; }));
  REQUIRE_FALSE(fs::exists(file));

  CHECK(fs::exists(backup_dir(first, del.uid())));
  first.crash();
  CHECK(blade::test::process_state(sleeper) == 'T');  // both faults outlived the daemon
  CHECK_FALSE(fs::exists(file));

  first.restart();  // returns once recovery has run
  CHECK(eventually([&] { return blade::test::process_state(sleeper) == 'S'; },
                   std::chrono::seconds(5)));
  CHECK(snap(file) == before);
  CHECK_FALSE(fs::exists(backup_dir(first, del.uid())));
  auto c2 = first.client();
  for (const auto &uid : {stop.uid(), del.uid()}) {
    const auto x = experiment(c2, uid);
    REQUIRE(x.is_object());
    CHECK(x["status"] == "destroyed");
  }
  first.process->signal(SIGTERM);
  CHECK(first.process->exit_code(std::chrono::seconds(10)) == 0);
}
