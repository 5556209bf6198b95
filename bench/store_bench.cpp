// The store alone (no service, no HTTP): what one create+destroy costs it
// (the two state-change writes with their audit lines, and the two request
// lines that ride along), counted from Store::stats() and timed from 1 and
// 4 threads; then a store of <rows> experiments: filtered pages by offset
// and by cursor, and a read by uid.
//
//   store_bench <pairs> <rows>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "../tests/support/temp_dir.hpp"
#include "bench_stats.hpp"
#include "blade/core/store/store.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using blade::AuditEntry;
using blade::Experiment;
using blade::ExperimentFilter;
using blade::ExperimentStatus;
using blade::Store;

const char *const kTargets[] = {"cpu", "mem", "network", "disk", "file"};
const char *const kActions[] = {"fullload", "delay", "loss"};
const char *const kScopes[] = {"host", "docker", "pod"};

Experiment experiment(std::int64_t n, std::chrono::system_clock::time_point at) {
  Experiment e;
  e.uid = fmt::format("{:016x}", n);
  e.target = kTargets[n % 5];
  e.action = kActions[n % 3];
  e.scope = kScopes[n % 3 == 0 ? 0 : n % 7 == 0 ? 2 : 1];
  e.flags = {{"timeout", "60"}, {"path", "/tmp/x"}};
  e.executor = "inprocess:noop";
  e.result_json = "{}";
  e.created_at = e.updated_at = at;
  return e;
}

AuditEntry line(const std::string &action, const std::string &subject) {
  AuditEntry a;
  a.time = std::chrono::system_clock::now();
  a.actor = "bench";
  a.remote = "127.0.0.1";
  a.action = action;
  a.subject = subject;
  return a;
}

void pairs(Store &store, int threads, int per_thread, std::int64_t first) {
  const auto before = store.stats();
  const auto start = Clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        Experiment e = experiment(first + t * per_thread + i, std::chrono::system_clock::now());
        e.status = ExperimentStatus::Running;
        const AuditEntry created = line("experiment.create", e.uid);
        store.insert_experiment(e, &created);
        store.queue_audit(line("http.request", "POST /v1/experiments"));
        e.status = ExperimentStatus::Destroyed;
        const AuditEntry destroyed = line("experiment.destroy", e.uid);
        store.update_experiment(e, &destroyed);
        store.queue_audit(line("http.request", "DELETE /v1/experiments/" + e.uid));
      }
    });
  }
  for (auto &w : workers)
    w.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  store.flush_audit();
  const auto after = store.stats();
  const double n = threads * per_thread;
  fmt::print("store pairs, {} thread(s): {:.0f} pairs/s; per pair {:.2f} transactions, {:.2f} "
             "statements (request lines included)\n",
             threads, n / seconds,
             static_cast<double>(after.transactions - before.transactions) / n,
             static_cast<double>(after.statements - before.statements) / n);
}

template <class F>
void timed(const std::string &what, int repetitions, F &&f) {
  std::vector<double> us;
  for (int i = 0; i < repetitions; ++i) {
    const auto start = Clock::now();
    f(i);
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  fmt::print("  {:<44} p50 {:8.1f} us  p99 {:8.1f} us\n", what,
             blade::bench::percentile(us, 0.5), blade::bench::percentile(us, 0.99));
}

}  // namespace

int main(int argc, char **argv) {
  const int pair_count = argc > 1 ? std::atoi(argv[1]) : 5000;
  const int rows = argc > 2 ? std::atoi(argv[2]) : 100000;
  blade::test::TempDir dir("store-bench");
  {
    Store store(dir.path() / "pairs.db");
    pairs(store, 1, pair_count, 0);
    pairs(store, 4, pair_count / 4, 10'000'000);
  }

  Store store(dir.path() / "list.db");
  const auto base = std::chrono::system_clock::now() - std::chrono::hours(24);
  for (std::int64_t n = 0; n < rows; ++n) {
    Experiment e = experiment(n, base + std::chrono::milliseconds(n * 300));
    e.status = n % 97 == 0 ? ExperimentStatus::Running
               : n % 11 == 0 ? ExperimentStatus::Failed
                             : ExperimentStatus::Destroyed;
    store.insert_experiment(e);
  }
  fmt::print("a store of {} experiments:\n", rows);
  const int reps = 300;
  struct Case {
    std::string name;
    ExperimentFilter filter;
  };
  std::vector<Case> cases;
  cases.push_back({"unfiltered", {}});
  {
    ExperimentFilter f;
    f.status = ExperimentStatus::Running;
    cases.push_back({"status=running", f});
    f = {};
    f.target = "cpu";
    cases.push_back({"target=cpu", f});
    f.action = "delay";
    cases.push_back({"target=cpu action=delay", f});
    f = {};
    f.status = ExperimentStatus::Running;
    f.scope = "pod";
    cases.push_back({"status=running scope=pod", f});
    f = {};
    f.status = ExperimentStatus::Destroyed;
    f.target = "mem";
    f.scope = "docker";
    cases.push_back({"status=destroyed target=mem scope=docker", f});
  }
  for (auto &c : cases) {
    for (const bool ascending : {false, true}) {
      ExperimentFilter f = c.filter;
      f.ascending = ascending;
      const std::string order = ascending ? " asc" : " desc";
      timed(c.name + order + " offset 0", reps, [&](int) { store.list_experiments(f); });
      // The cursor of a page deep in the list, then pages from there.
      ExperimentFilter walk = f;
      walk.limit = 1000;
      for (int i = 0; i < 20; ++i) {
        const auto page = store.list_experiments(walk);
        if (page.next.empty()) break;
        walk.after = page.next;
      }
      ExperimentFilter keyset = f;
      keyset.after = walk.after;
      timed(c.name + order + " keyset (deep)", reps, [&](int) { store.list_experiments(keyset); });
    }
  }
  ExperimentFilter deep;
  deep.offset = rows / 2;
  timed("unfiltered desc offset " + std::to_string(rows / 2), 50,
        [&](int) { store.list_experiments(deep); });
  timed("get by uid", 2000, [&](int i) {
    store.get_experiment(fmt::format("{:016x}", (static_cast<std::int64_t>(i) * 7919) % rows));
  });
  return 0;
}
