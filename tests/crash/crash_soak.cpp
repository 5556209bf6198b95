// The crash soak (`make crash-soak`, not part of `make test`): per fault
// type, N trials each SIGKILLing bladed at a uniformly random moment 0-50 ms
// after the create request is sent (every fourth trial: after the destroy
// request of a running experiment instead), restarting it on the same
// state and counting what was left on the host.
//
//   BLADE_SOAK_TRIALS   trials per fault type (default 100)
//   BLADE_SOAK_ROWS     comma-separated row names (default: every row)
//   BLADE_SOAK_MAX_MS   the window of the kill, ms (default 50)
//   BLADE_SOAK_SEED     random seed (default: from the clock; printed)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>

#include <doctest/doctest.h>

#include "crash_trial.hpp"

using namespace blade::test;
using namespace blade::test::crash;

namespace {

long env_number(const char *name, long fallback) {
  const char *v = std::getenv(name);
  return v && *v ? std::strtol(v, nullptr, 10) : fallback;
}

bool row_selected(const std::string &name) {
  const char *only = std::getenv("BLADE_SOAK_ROWS");
  if (!only || !*only) return true;
  std::stringstream list(only);
  for (std::string item; std::getline(list, item, ',');)
    if (item == name) return true;
  return false;
}

struct Tally {
  int trials = 0, leftovers = 0, lies = 0, bad_status = 0;
  int landed[5] = {};
};

}  // namespace

TEST_CASE("crash soak: SIGKILL at random moments of create and destroy leaves nothing") {
  const long trials = env_number("BLADE_SOAK_TRIALS", 100);
  const long max_us = env_number("BLADE_SOAK_MAX_MS", 50) * 1000;
  const auto seed = static_cast<unsigned long>(env_number(
      "BLADE_SOAK_SEED", std::chrono::steady_clock::now().time_since_epoch().count() % 1000000));
  std::mt19937_64 random(seed);
  std::uniform_int_distribution<long> moment(0, max_us);
  std::printf("crash-soak: %ld trials per fault type, kill 0-%ld ms after the request, seed %lu\n",
              trials, max_us / 1000, seed);

  TrialScratch scratch;
  int total_leftovers = 0;
  for (const auto &row : fault_rows()) {
    if (!row_selected(row.name)) continue;
    Tally t;
    const auto started = std::chrono::steady_clock::now();
    for (long i = 0; i < trials; ++i) {
      const bool in_destroy = i % 4 == 3;
      const auto delay = std::chrono::microseconds(moment(random));
      const SoakTrial s = kill_after(row, delay, in_destroy);
      ++t.trials;
      ++t.landed[static_cast<int>(s.landed)];
      const auto &r = s.result;
      if (!r.left.empty()) {
        ++t.leftovers;
        if (r.status == "destroyed" || r.status == "failed") ++t.lies;
      } else if (!r.ok()) {
        ++t.bad_status;
      }
      if (!r.ok()) {
        std::printf("crash-soak: %s trial %ld (%s, kill at %.1f ms): %s\n%s", row.name.c_str(), i,
                    in_destroy ? "destroy" : "create", static_cast<double>(delay.count()) / 1000.0,
                    r.problem.c_str(), r.left.c_str());
        std::fflush(stdout);
      }
    }
    const auto took = std::chrono::duration_cast<std::chrono::seconds>(
        std::chrono::steady_clock::now() - started);
    std::printf(
        "crash-soak: %-16s %d trials, leftovers %d (of which the experiment read destroyed or "
        "failed: %d), wrong final status %d; kill landed: before the row %d, mid-create %d, "
        "after the create's answer %d, mid-destroy %d, after the destroy's answer %d; %lld s\n",
        row.name.c_str(), t.trials, t.leftovers, t.lies, t.bad_status, t.landed[0], t.landed[1],
        t.landed[2], t.landed[3], t.landed[4], static_cast<long long>(took.count()));
    std::fflush(stdout);
    total_leftovers += t.leftovers + t.bad_status;
  }
  CHECK(total_leftovers == 0);
}
