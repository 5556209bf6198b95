// One row of the compat table: a usage example of ChaosBlade's exec-os, the
// command line actually run (the example with safe paths, processes, ports,
// cores and sizes substituted), and how its effect on the host and its
// cleanup are told.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "../cli/blade_run.hpp"
#include "bladed_process.hpp"

namespace blade::test::compat {

namespace fs = std::filesystem;

// What a check saw: whether it held, and in words what it measured.
struct Outcome {
  bool ok = false;
  std::string what;
};
inline Outcome held(std::string what) { return {true, std::move(what)}; }
inline Outcome failed(std::string what) { return {false, std::move(what)}; }

// What every row may use: the daemon (its pid for the process tree whose cpu,
// memory and io a fault uses) and the CLI talking to it.
struct Env {
  BladedProcess &bladed;
  const BladeRunner &blade;
  pid_t bladed_pid() const { return bladed.process->pid(); }
};

// A row prepared on the host: the words to give `blade`, and the checks.
// The lambdas own (by shared_ptr) whatever the row set up, so it lives until
// the row is done and then goes (processes killed, dirs removed, unmounted).
struct Fixture {
  std::vector<std::string> words;  // after `blade`
  std::string substituted;         // what differs from the example, and why
  std::filesystem::path cwd;       // where blade runs (empty: the test's own)
  std::function<Outcome(const std::string &uid)> effect;
  std::function<Outcome(const std::string &uid)> clean;
  std::string cannot_run;  // set: the row cannot run on this machine, and why
};

// Where a row runs: on the test machine, or (when its fault would disturb
// the machine itself or needs what it lacks) inside a user-mode Linux guest
// that re-runs this binary (tests/support/uml_vm.hpp).
enum class Where {
  host,
  clock_guest,    // a plain guest whose wall clock is the test's own
  systemd_guest,  // a guest booted with systemd as PID 1
  network,        // on the test machine, in a NetworkWorld (network_world.hpp)
  netem_guest,    // a guest with sch_netem and friends, in a NetworkWorld there
};

struct Row {
  std::string target;
  std::string example;  // the line exactly as ChaosBlade's Example string has it
  std::function<Fixture(Env &)> setup;
  Where where = Where::host;
};

// The rows of each target family (rows_*.cpp).
std::vector<Row> cpu_mem_rows();
std::vector<Row> process_rows();
std::vector<Row> file_script_rows();
std::vector<Row> disk_rows();
std::vector<Row> system_rows();  // systemd, time, strace
std::vector<Row> network_rows();

}  // namespace blade::test::compat
