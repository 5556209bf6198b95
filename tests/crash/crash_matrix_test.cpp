// The crash matrix: for every fault type of fault_rows() and every failpoint
// its create and destroy pass through (found by running them once with
// BLADE_FAILPOINTS_LOG, so new failpoints join by themselves), a bladed
// armed to SIGKILL itself there, a restart on the same state, and the host
// compared with its state before the create. One line per (row, point),
// then a summary.
//
// BLADE_CRASH_ROWS=<name>,<name> limits the rows (e.g. "disk fill").
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "crash_trial.hpp"

using namespace blade::test;
using namespace blade::test::crash;

namespace {

// A leak the matrix finds whose cause is known and owned elsewhere: reported
// KNOWN, not failed, as long as every fact left is one it names. An entry
// that no longer leaks fails the test, so the list only shrinks.
struct KnownLeak {
  std::string row;
  std::string point;  // a window's label; "*": every trial of the row, the plain run too
  std::string fact;   // how each excused difference line starts ("left: file added.txt")
  std::string why;
};

const std::vector<KnownLeak> &known_leaks() {
  // Empty: every row leaves the host exactly as it was at every failpoint.
  // A leak whose cause is known and owned elsewhere may be listed here while
  // it is fixed (row, point or "*", the start of each fact excused); an
  // entry whose trial stops leaking fails the test, so the list only shrinks.
  static const std::vector<KnownLeak> known = {};
  return known;
}

std::vector<const KnownLeak *> leaks_for(const std::string &row, const std::string &point) {
  std::vector<const KnownLeak *> out;
  for (const auto &k : known_leaks())
    if (k.row == row && (k.point == "*" || k.point == point)) out.push_back(&k);
  return out;
}

// True when `left` is not empty and each of its lines is excused.
bool all_known(const std::string &left, const std::vector<const KnownLeak *> &leaks) {
  if (left.empty() || leaks.empty()) return false;
  std::istringstream lines(left);
  for (std::string line; std::getline(lines, line);) {
    const auto text = line.substr(line.find_first_not_of(' '));
    bool excused = false;
    for (const auto *k : leaks)
      excused = excused || text.rfind(k->fact, 0) == 0;
    if (!excused) return false;
  }
  return true;
}

bool row_selected(const std::string &name) {
  const char *only = std::getenv("BLADE_CRASH_ROWS");
  if (!only || !*only) return true;
  std::stringstream list(only);
  for (std::string item; std::getline(list, item, ',');)
    if (item == name) return true;
  return false;
}

struct Counts {
  int trials = 0, passed = 0, known = 0, failed = 0;
};

// Prints the line of one (row, point), counts it and checks it.
void judge(const std::string &row, const std::string &point, const std::string &status,
           const std::string &problem, const std::string &left, Counts &n) {
  ++n.trials;
  const auto leaks = leaks_for(row, point);
  const bool ok = problem.empty();
  // A status problem is never excused: only facts left are.
  const bool known = !ok && all_known(left, leaks) && problem.rfind("left on the host", 0) == 0;
  std::printf("crash-matrix: %-16s %-44s -> %-9s %s%s\n", row.c_str(), point.c_str(),
              status.empty() ? "(none)" : status.c_str(), ok ? "ok" : known ? "KNOWN" : "FAIL",
              ok ? "" : (": " + problem).c_str());
  if (known) std::printf("%s", left.c_str());  // a failure's facts come with its CHECK
  std::fflush(stdout);
  if (ok) {
    ++n.passed;
    for (const auto *k : leaks)
      CHECK_MESSAGE(k->point == "*", row << " at " << point
                                         << " no longer leaks: remove it from known_leaks()");
  } else if (known) {
    ++n.known;
  } else {
    ++n.failed;
    CHECK_MESSAGE(ok, row << " at " << point << ": " << problem << "\n" << left);
  }
}

}  // namespace

#ifdef BLADE_FAILPOINTS

TEST_CASE("a SIGKILL at any failpoint of any fault type leaves nothing once bladed restarts") {
  TrialScratch scratch;
  Counts n;
  int rows = 0;
  std::set<std::string> names;
  const auto started = std::chrono::steady_clock::now();
  for (const auto &row : fault_rows()) {
    if (!row_selected(row.name)) continue;
    ++rows;
    const Discovery found = discover_windows(row);
    // A create and destroy with no crash: what the trials are measured by.
    judge(row.name, "(no crash)", "destroyed",
          found.left.empty() ? "" : "left on the host by a plain create and destroy", found.left,
          n);
    for (const auto &k : leaks_for(row.name, "*"))
      CHECK_MESSAGE(!found.left.empty(), row.name << ": the plain run leaves nothing now: "
                                                  << "narrow or remove known leak '" << k->fact
                                                  << "'");
    // The core's four are always there: without them failpoints are not
    // compiled in, or the row never reached its plugin.
    std::set<std::string> seen;
    for (const auto &w : found.windows)
      seen.insert(w.name);
    for (const char *core : {"core.create.before_plugin", "core.create.after_plugin",
                             "core.destroy.before_plugin", "core.destroy.after_plugin"})
      CHECK_MESSAGE(seen.count(core), row.name << " never passed " << core);

    for (const auto &w : found.windows) {
      names.insert(w.name);
      const TrialResult r = kill_at(row, w);
      judge(row.name, w.label(), r.status, r.problem, r.left, n);
    }
  }
  const auto took = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::steady_clock::now() - started);
  std::printf(
      "crash-matrix summary: %d rows, %zu distinct points, %d trials (with the plain runs): "
      "%d ok, %d known leaks, %d failed, in %lld s\n",
      rows, names.size(), n.trials, n.passed, n.known, n.failed,
      static_cast<long long>(took.count()));
}

#else

TEST_CASE("crash matrix: failpoints are not compiled in (meson option failpoints=false)") {
  MESSAGE("skipped: this build has no failpoints to aim at");
}

#endif
