// Create+destroy round trips through the experiment service with the
// durable SQLite store, from 8 client threads: a no-op fault in-process (a
// test plugin) against the same no-op through the external fallback (the
// chaosblade-exec stand-in), measured in the same run.
//   usage: service_bench [inprocess-pairs] [external-pairs]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "../tests/support/temp_dir.hpp"
#include "bench_stats.hpp"
#include "blade/core/model/log.hpp"
#include "daemon/daemon.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

using blade::bench::median;
using blade::bench::percentile;

constexpr int kThreads = 8;
constexpr std::size_t kWorkers = 4;  // bladed's default

struct Figures {
  double pairs_per_s = 0;
  std::vector<double> create_ms, destroy_ms;
  int errors = 0;
};

Figures run(const std::string &label, bool external, int pairs) {
  blade::test::TempDir dir("blade-bench-" + label);
  fs::create_directories(dir / "plugins");
  fs::copy_file(fs::path(BLADE_TEST_PLUGIN_DIR) / "noop_a.so", dir / "plugins" / "noop_a.so");
  fs::permissions(dir / "plugins" / "noop_a.so", fs::perms(0755));
  fs::create_directories(dir / "home" / "yaml");
  fs::create_directories(dir / "home" / "bin");
  fs::copy_file(BLADE_STANDIN_SPEC,
                dir / "home" / "yaml" / fs::path(BLADE_STANDIN_SPEC).filename());
  fs::copy_file(BLADE_STANDIN_BIN, dir / "home" / "bin" / "chaos_standin");

  // Assembled exactly as bladed assembles it.
  blade::server::Config config;
  config.sqlite_path = dir / "blade.db";
  config.plugin_dirs = {dir / "plugins"};
  config.state_dir = dir / "state";
  config.chaosblade_home = dir / "home";
  config.workers = static_cast<int>(kWorkers);
  blade::server::Daemon daemon(config);
  blade::ExperimentService &service = daemon.service();

  Figures f;
  std::mutex m;
  std::atomic<int> next{0};
  auto t0 = Clock::now();
  std::vector<std::thread> clients;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&] {
      std::vector<double> c, d;
      int errors = 0;
      for (int i = next++; i < pairs; i = next++) {
        blade::CreateRequest r;
        r.target = external ? "marker" : "noopa";
        r.action = "noop";
        auto a = Clock::now();
        auto x = service.create(r).experiment;
        auto b = Clock::now();
        auto y = service.destroy(x.uid).experiment;
        auto e = Clock::now();
        if (x.status != blade::ExperimentStatus::Running ||
            y.status != blade::ExperimentStatus::Destroyed)
          ++errors;
        c.push_back(std::chrono::duration<double, std::milli>(b - a).count());
        d.push_back(std::chrono::duration<double, std::milli>(e - b).count());
      }
      std::lock_guard lock(m);
      f.create_ms.insert(f.create_ms.end(), c.begin(), c.end());
      f.destroy_ms.insert(f.destroy_ms.end(), d.begin(), d.end());
      f.errors += errors;
    });
  }
  for (auto &c : clients)
    c.join();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  f.pairs_per_s = pairs / secs;
  std::printf(
      "  %-10s %5d pairs: %8.0f pairs/s | create p50 %.3f ms p99 %.3f ms | destroy p50 %.3f ms p99 "
      "%.3f ms | errors %d\n",
      label.c_str(), pairs, f.pairs_per_s, percentile(f.create_ms, 0.5),
      percentile(f.create_ms, 0.99), percentile(f.destroy_ms, 0.5), percentile(f.destroy_ms, 0.99),
      f.errors);
  return f;
}

}  // namespace

// Rounds alternate between the two executors so a slow patch of this shared
// machine hits both; the medians of the rounds are reported.
int main(int argc, char **argv) {
  int inprocess_pairs = argc > 1 ? std::atoi(argv[1]) : 2000;
  int external_pairs = argc > 2 ? std::atoi(argv[2]) : 200;
  int rounds = argc > 3 ? std::atoi(argv[3]) : 5;
  blade::log::set_level(blade::log::Level::Error);
  std::printf(
      "service benchmark: %d client threads, %zu workers, durable SQLite store (WAL), %d rounds\n",
      kThreads, kWorkers, rounds);
  std::vector<double> in_rates, ex_rates;
  int errors = 0;
  for (int r = 0; r < rounds; ++r) {
    auto in = run("inprocess", false, inprocess_pairs);
    auto ex = run("external", true, external_pairs);
    in_rates.push_back(in.pairs_per_s);
    ex_rates.push_back(ex.pairs_per_s);
    errors += in.errors + ex.errors;
  }
  double in_median = median(in_rates), ex_median = median(ex_rates);
  std::printf("  median of rounds: in-process %.0f pairs/s, external %.0f pairs/s, ratio %.1fx\n",
              in_median, ex_median, in_median / ex_median);
  std::printf("  target >= 2000 in-process pairs/s (median): %s\n",
              in_median >= 2000 ? "met" : "MISSED");
  return in_median >= 2000 && errors == 0 ? 0 : 1;
}
