// Create+destroy round trips over HTTP against the real bladed (a child
// process, the no-op test plugin, the durable store, auth and audit on),
// beside a baseline of a bare cpp-httplib server with the same thread pool
// answering a tiny JSON, driven by the same load generator in the same run.
// Per pair, over each measured window: bladed's CPU, the write transactions
// and SQL statements of its store (its /metrics counters), its allocations
// (counted by bench/malloc_count.c preloaded into it), the context switches
// of its threads; and the steal the machine saw meanwhile.
// Then bladed's footprint: idle CPU, RSS and WAL after the load, and a
// fresh bladed with every built plugin loaded: its RSS before any request,
// then after `rss-pairs` pairs and 10 s idle, and its WAL at rest.
//   usage: http_bench [seconds-per-round] [rounds] [rss-pairs]
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../tests/support/prometheus_value.hpp"
#include "../tests/support/temp_dir.hpp"
#include "bench_bladed.hpp"
#include "bench_stats.hpp"
#include "cpu_steal.hpp"
#include "malloc_counter.hpp"
#include "process_figures.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

using blade::bench::context_switches;
using blade::bench::cpu_seconds;
using blade::bench::MallocCounter;
using blade::bench::median;
using blade::bench::percentile;
using blade::bench::rss_mb;

constexpr int kClients = 8;
constexpr int kServerThreads = 24;  // bladed's default --http-threads
constexpr auto kWarmup = std::chrono::seconds(1);
constexpr auto kIdle = std::chrono::seconds(10);
const std::string &kToken = blade::bench::kBenchToken;

// Issue 17's targets (at 8 clients; RSS and WAL in MiB).
constexpr double kTargetPairsPerS = 5000;
constexpr double kTargetRatio = 0.5;  // of the bare baseline's pairs/s
constexpr double kTargetP99Ms = 5;
constexpr double kTargetCpuUsPerPair = 250;
constexpr double kTargetFreshRssMb = 10;
constexpr double kTargetLoadedRssMb = 12;
constexpr double kTargetWalMb = 8;

struct Endpoint {
  int port = 0;
  std::string create_path;     // POST, expects 201 with data.uid
  std::string destroy_prefix;  // DELETE prefix + uid, expects 200
  std::string body;
};

// The server under load, for its per-pair costs.
struct Watched {
  pid_t pid = 0;
  int port = 0;                            // where its /metrics are
  const MallocCounter *mallocs = nullptr;  // preloaded into it
};

// A server's running totals at one moment.
struct Counters {
  double cpu_s = 0;
  long long switches = 0;
  std::optional<double> transactions, statements;  // absent from its /metrics
  std::optional<double> mallocs;
};

// The per-pair figures are nullopt when not measured (the baseline) or
// absent (a daemon whose /metrics lack the store counters).
struct Figures {
  double pairs_per_s = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  long pairs = 0;
  long errors = 0;
  std::optional<double> cpu_us, transactions, statements, mallocs, switches;
  double steal_pct = 0;
};

// Metrics first at the start and last at the end: the GET's own work falls
// outside the window (only its audit line, one row, falls inside).
Counters metrics_of(const Watched &w, Counters c) {
  httplib::Client client("127.0.0.1", w.port);
  if (auto res = client.Get("/metrics", {{"X-Api-Token", kToken}}); res && res->status == 200) {
    c.transactions = blade::test::prometheus_value(res->body, "blade_store_transactions_total");
    c.statements = blade::test::prometheus_value(res->body, "blade_store_statements_total");
  }
  return c;
}

Counters process_of(const Watched &w, Counters c) {
  c.cpu_s = cpu_seconds(w.pid);
  c.switches = context_switches(w.pid);
  if (w.mallocs) c.mallocs = static_cast<double>(w.mallocs->total());
  return c;
}

std::optional<double> per_pair(const std::optional<double> &from, const std::optional<double> &to,
                               long pairs, double scale = 1) {
  if (!from || !to || pairs <= 0) return std::nullopt;
  return (*to - *from) * scale / static_cast<double>(pairs);
}

// One client's create+destroy; false on any unexpected answer.
bool round_trip(httplib::Client &client, const Endpoint &ep, const httplib::Headers &headers) {
  auto created = client.Post(ep.create_path.c_str(), headers, ep.body, "application/json");
  if (!created || created->status != 201) return false;
  auto body = nlohmann::json::parse(created->body, nullptr, false);
  if (!body.is_object() || !body["data"].is_object() || !body["data"]["uid"].is_string())
    return false;
  const std::string path = ep.destroy_prefix + body["data"]["uid"].get<std::string>();
  auto destroyed = client.Delete(path.c_str(), headers);
  return destroyed && destroyed->status == 200;
}

// kClients threads, each on its own keep-alive connection, doing round trips
// while `more()` says so; each is given the time its pair started and says
// whether that pair counts. Returns the errors.
long run_clients(const Endpoint &ep, const std::function<bool()> &more,
                 const std::function<void(Clock::time_point, Clock::time_point)> &done) {
  const httplib::Headers headers = {{"X-Api-Token", kToken}};
  std::atomic<long> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&] {
      httplib::Client client("127.0.0.1", ep.port);
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);
      client.set_connection_timeout(5);
      client.set_read_timeout(10);
      while (more()) {
        const auto begin = Clock::now();
        if (round_trip(client, ep, headers)) {
          done(begin, Clock::now());
        } else {
          ++errors;
        }
      }
    });
  }
  for (auto &t : threads)
    t.join();
  return errors;
}

// Round trips for the warm-up and then `duration`; only the latter counts.
// With a watched server, its costs per pair over the counted window.
Figures drive(const Endpoint &ep, std::chrono::milliseconds duration,
              const Watched *server = nullptr) {
  const auto start = Clock::now();
  const auto measure_from = start + kWarmup;
  const auto stop_at = measure_from + duration;
  std::mutex m;
  std::vector<double> latencies;
  Counters before;
  blade::bench::CpuTicks steal_before{};
  std::thread sampler([&] {
    std::this_thread::sleep_until(measure_from);
    steal_before = blade::bench::cpu_ticks_now();
    if (server) before = process_of(*server, metrics_of(*server, {}));
  });
  const long errors = run_clients(
      ep, [&] { return Clock::now() < stop_at; },
      [&](Clock::time_point begin, Clock::time_point end) {
        if (begin < measure_from) return;
        std::lock_guard lock(m);
        latencies.push_back(std::chrono::duration<double, std::milli>(end - begin).count());
      });
  sampler.join();
  // The last pairs may end a little after stop_at: count the real window.
  const double secs = std::chrono::duration<double>(Clock::now() - measure_from).count();
  Figures f;
  f.steal_pct = blade::bench::steal_percent(steal_before, blade::bench::cpu_ticks_now());
  f.pairs = static_cast<long>(latencies.size());
  f.pairs_per_s = static_cast<double>(f.pairs) / secs;
  f.p50_ms = percentile(latencies, 0.5);
  f.p99_ms = percentile(latencies, 0.99);
  f.errors = errors;
  if (server) {
    const Counters after = metrics_of(*server, process_of(*server, {}));
    f.cpu_us = per_pair(before.cpu_s, after.cpu_s, f.pairs, 1e6);
    f.switches = per_pair(static_cast<double>(before.switches), static_cast<double>(after.switches),
                          f.pairs);
    f.transactions = per_pair(before.transactions, after.transactions, f.pairs);
    f.statements = per_pair(before.statements, after.statements, f.pairs);
    f.mallocs = per_pair(before.mallocs, after.mallocs, f.pairs);
  }
  return f;
}

// Exactly `pairs` round trips (the footprint's load); the errors.
long drive_pairs(const Endpoint &ep, long pairs) {
  std::atomic<long> left{pairs};
  return run_clients(
      ep, [&] { return left.fetch_sub(1) > 0; }, [](Clock::time_point, Clock::time_point) {});
}

// A bare cpp-httplib server in this process: the floor any HTTP daemon on
// this library and machine stands on. TCP_NODELAY is its one setting: with
// Nagle on (httplib's default), a response written as headers then body
// waits for the client's delayed ACK, ~40 ms a request on Linux, and the
// floor would measure that timer instead of the server. The clients set it
// for the same reason (a request is written the same way).
class Baseline {
 public:
  Baseline() {
    server_.new_task_queue = [] { return new httplib::ThreadPool(kServerThreads); };
    server_.set_tcp_nodelay(true);
    server_.Post("/hello", [this](const httplib::Request &, httplib::Response &res) {
      char uid[17];
      std::snprintf(uid, sizeof uid, "%016lx", next_++);
      res.status = 201;
      res.set_content(std::string(R"({"code":"OK","message":"","data":{"uid":")") + uid + "\"}}",
                      "application/json");
    });
    server_.Delete("/hello/([^/]+)", [](const httplib::Request &req, httplib::Response &res) {
      res.status = 200;
      res.set_content(
          R"({"code":"OK","message":"","data":{"uid":")" + std::string(req.matches[1]) + "\"}}",
          "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~Baseline() {
    server_.stop();
    thread_.join();
  }
  Baseline(const Baseline &) = delete;
  Baseline &operator=(const Baseline &) = delete;

  Endpoint endpoint() const { return {port_, "/hello", "/hello/", "{}"}; }

 private:
  httplib::Server server_;
  std::atomic<unsigned long> next_{1};
  int port_ = 0;
  std::thread thread_;
};

// The real bladed with the no-op plugin, for the load.
class Bladed : public blade::bench::BenchBladed {
 public:
  using BenchBladed::BenchBladed;
  Endpoint endpoint() const {
    return {port(), "/v1/experiments", "/v1/experiments/", R"({"target":"noopa","action":"noop"})"};
  }
  // How many plugins it says it loaded; -1 when it does not answer.
  int plugins_loaded() const {
    httplib::Client c("127.0.0.1", port());
    if (auto res = c.Get("/v1/health")) {
      auto body = nlohmann::json::parse(res->body, nullptr, false);
      if (body.is_object() && body["data"].is_object() && body["data"]["plugins"].is_number())
        return body["data"]["plugins"].get<int>();
    }
    return -1;
  }
};

std::vector<fs::path> built_plugins() {
  std::vector<fs::path> out;
  for (const auto &e : fs::directory_iterator(BLADE_BUILT_PLUGIN_DIR))
    if (e.is_regular_file() && e.path().extension() == ".so") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

void print_round(int round, const char *label, const Figures &f) {
  std::printf("  round %d %-9s %8.0f pairs/s  p50 %7.3f ms  p99 %7.3f ms  (%ld pairs, %ld errors)",
              round, label, f.pairs_per_s, f.p50_ms, f.p99_ms, f.pairs, f.errors);
  if (f.cpu_us) std::printf("  CPU %.0f us/pair", *f.cpu_us);
  std::printf("  steal %.1f%%\n", f.steal_pct);
  std::fflush(stdout);
}

const char *verdict(bool met) {
  return met ? "met" : "MISSED";
}

// The median of the rounds that measured it; nullopt when none did.
std::optional<double> median_of(const std::vector<std::optional<double>> &rounds) {
  std::vector<double> v;
  for (const auto &r : rounds)
    if (r) v.push_back(*r);
  if (v.empty()) return std::nullopt;
  return median(v);
}

void print_per_pair(const char *what, const std::optional<double> &v, const char *absent) {
  if (v) {
    std::printf("  %-24s %10.1f\n", what, *v);
  } else {
    std::printf("  %-24s %10s %s\n", what, "n/a", absent);
  }
}

}  // namespace

int main(int argc, char **argv) {
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 10;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  const long rss_pairs = argc > 3 ? std::atol(argv[3]) : 100000;
  if (seconds < 1 || rounds < 1 || rss_pairs < 0) {
    std::fprintf(stderr,
                 "usage: http_bench [seconds-per-round >= 1] [rounds >= 1] [rss-pairs >= 0]\n");
    return 2;
  }
  const std::vector<std::string> load_args = {"--rate-limit", "0", "--max-active", "0"};
  const fs::path noop = fs::path(BLADE_TEST_PLUGIN_DIR) / "noop_a.so";
  const auto steal_from = blade::bench::cpu_ticks_now();

  std::printf(
      "http benchmark: %d keep-alive clients, create+destroy pairs, %d s per round after %d s "
      "warm-up, %d rounds\n",
      kClients, seconds, static_cast<int>(kWarmup.count()), rounds);
  std::printf(
      "  bladed: noop_a plugin, durable store, auth + audit, --rate-limit 0 --max-active 0, "
      "allocations counted (one uncontended atomic add each)\n");
  std::printf("  baseline: bare cpp-httplib, %d-thread pool, POST /hello + DELETE /hello/{uid}\n",
              kServerThreads);

  blade::test::TempDir scratch("blade-http-bench");
  std::vector<double> b_rate, b_p50, b_p99, h_rate, h_p50, h_p99, ratio;
  std::vector<std::optional<double>> h_cpu, h_tx, h_stmt, h_malloc, h_switch;
  long errors = 0;
  std::optional<Bladed> last;
  std::optional<MallocCounter> last_mallocs;
  try {
    for (int r = 1; r <= rounds; ++r) {
      // Alternating, so a slow patch of a shared machine hits both.
      Figures base;
      {
        Baseline baseline;
        base = drive(baseline.endpoint(), std::chrono::seconds(seconds));
      }
      print_round(r, "baseline", base);
      last.reset();
      last_mallocs.emplace(scratch / "mallocs");
      last.emplace(std::vector<fs::path>{noop}, load_args, last_mallocs->env());
      const Watched watched{last->pid(), last->port(), &*last_mallocs};
      Figures blade = drive(last->endpoint(), std::chrono::seconds(seconds), &watched);
      print_round(r, "bladed", blade);
      b_rate.push_back(base.pairs_per_s);
      b_p50.push_back(base.p50_ms);
      b_p99.push_back(base.p99_ms);
      h_rate.push_back(blade.pairs_per_s);
      h_p50.push_back(blade.p50_ms);
      h_p99.push_back(blade.p99_ms);
      ratio.push_back(base.pairs_per_s > 0 ? blade.pairs_per_s / base.pairs_per_s : 0.0);
      h_cpu.push_back(blade.cpu_us);
      h_tx.push_back(blade.transactions);
      h_stmt.push_back(blade.statements);
      h_malloc.push_back(blade.mallocs);
      h_switch.push_back(blade.switches);
      errors += base.errors + blade.errors;
    }
  } catch (const std::exception &e) {
    std::fprintf(stderr, "http_bench: %s\n", e.what());
    return 1;
  }

  // Idle after the load: settle, then CPU over a window; RSS and WAL after
  // both, that is after kIdle.
  std::this_thread::sleep_for(kIdle / 2);
  const double cpu0 = cpu_seconds(last->pid());
  std::this_thread::sleep_for(kIdle / 2);
  const double idle_window_s = std::chrono::duration<double>(kIdle / 2).count();
  const double idle_cpu_pct = (cpu_seconds(last->pid()) - cpu0) / idle_window_s * 100.0;
  const double idle_rss = rss_mb(last->pid());
  const double idle_wal = blade::bench::wal_mb(last->database());
  last.reset();

  // A fresh daemon with every built plugin (and the no-op one for the
  // load): before any request, then after rss_pairs pairs and kIdle.
  auto plugins = built_plugins();
  const std::size_t built = plugins.size();
  plugins.push_back(noop);
  double fresh_rss = -1, loaded_rss = -1, loaded_wal = -1;
  int loaded_plugins = -1;
  long rss_errors = 0;
  try {
    Bladed full(plugins, load_args);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    fresh_rss = rss_mb(full.pid());
    loaded_plugins = full.plugins_loaded();
    rss_errors = drive_pairs(full.endpoint(), rss_pairs);
    std::this_thread::sleep_for(kIdle);
    loaded_rss = rss_mb(full.pid());
    loaded_wal = blade::bench::wal_mb(full.database());
  } catch (const std::exception &e) {
    std::fprintf(stderr, "http_bench: footprint bladed: %s\n", e.what());
    return 1;
  }
  errors += rss_errors;
  const double steal = blade::bench::steal_percent(steal_from, blade::bench::cpu_ticks_now());

  const double rate = median(h_rate), base_rate = median(b_rate);
  const double p50 = median(h_p50), p99 = median(h_p99);
  const double rate_ratio = median(ratio);
  const auto cpu = median_of(h_cpu);
  std::printf("\n  medians of %d rounds     %10s %10s %10s\n", rounds, "bladed", "baseline",
              "ratio");
  std::printf("  pairs/s                  %10.0f %10.0f %9.2fx (median of the rounds' ratios)\n",
              rate, base_rate, rate_ratio);
  std::printf("  pair latency p50 (ms)    %10.3f %10.3f %9.2fx\n", p50, median(b_p50),
              median(b_p50) > 0 ? p50 / median(b_p50) : 0.0);
  std::printf("  pair latency p99 (ms)    %10.3f %10.3f %9.2fx\n", p99, median(b_p99),
              median(b_p99) > 0 ? p99 / median(b_p99) : 0.0);
  std::printf("  per pair, bladed (all its threads, counted over the measured window):\n");
  print_per_pair("CPU (us, user+system)", cpu, "");
  print_per_pair("write transactions", median_of(h_tx), "(metric absent)");
  print_per_pair("SQL statements", median_of(h_stmt), "(metric absent)");
  print_per_pair("mallocs", median_of(h_malloc), "(counter not loaded)");
  print_per_pair("context switches", median_of(h_switch), "");
  std::printf("  errors                   %10ld\n", errors);
  std::printf("  steal over the whole run %9.1f%% of CPU time\n", steal);
  std::printf(
      "  idle after the load (%lld s): CPU %.2f%% over the last %.0f s, RSS %.1f MiB, WAL %.2f "
      "MiB\n",
      static_cast<long long>(kIdle.count()), idle_cpu_pct, idle_window_s, idle_rss, idle_wal);
  std::printf(
      "  every built plugin (%zu file(s)) + noop_a, %d loaded: fresh RSS %.1f MiB; after %ld "
      "pairs (%ld errors) and %lld s idle: RSS %.1f MiB, WAL %.2f MiB\n",
      built, loaded_plugins, fresh_rss, rss_pairs, rss_errors,
      static_cast<long long>(kIdle.count()), loaded_rss, loaded_wal);
  std::printf("  targets:\n");
  std::printf("    >= %.0f pairs/s: %s\n", kTargetPairsPerS, verdict(rate >= kTargetPairsPerS));
  std::printf("    >= %.1fx the bare baseline: %s\n", kTargetRatio,
              verdict(rate_ratio >= kTargetRatio));
  std::printf("    p99 per pair < %.0f ms: %s\n", kTargetP99Ms, verdict(p99 < kTargetP99Ms));
  std::printf("    bladed CPU <= %.0f us/pair: %s\n", kTargetCpuUsPerPair,
              cpu ? verdict(*cpu <= kTargetCpuUsPerPair) : "n/a");
  std::printf("    fresh idle RSS with every plugin <= %.0f MiB: %s\n", kTargetFreshRssMb,
              verdict(fresh_rss >= 0 && fresh_rss <= kTargetFreshRssMb));
  std::printf("    RSS after %ld pairs and %lld s idle <= %.0f MiB: %s\n", rss_pairs,
              static_cast<long long>(kIdle.count()), kTargetLoadedRssMb,
              verdict(loaded_rss >= 0 && loaded_rss <= kTargetLoadedRssMb));
  std::printf("    WAL at rest <= %.0f MiB: %s (after the rounds), %s (after %ld pairs)\n",
              kTargetWalMb, verdict(idle_wal <= kTargetWalMb), verdict(loaded_wal <= kTargetWalMb),
              rss_pairs);
  // Targets depend on the machine; wrong answers do not.
  return errors == 0 ? 0 : 1;
}
