// Create+destroy round trips over HTTP against the real bladed (a child
// process, the no-op test plugin, the durable store, auth and audit on),
// beside a baseline of a bare cpp-httplib server with the same thread pool
// answering a tiny JSON, driven by the same load generator in the same run.
// Then bladed's idle footprint: RSS and CPU after the load, and the RSS of a
// fresh bladed with every built plugin loaded before any request.
//   usage: http_bench [seconds-per-round] [rounds]
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bench_bladed.hpp"
#include "bench_stats.hpp"
#include "process_figures.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

using blade::bench::cpu_seconds;
using blade::bench::median;
using blade::bench::percentile;
using blade::bench::rss_mb;

constexpr int kClients = 8;
constexpr int kServerThreads = 24;  // bladed's default --http-threads
constexpr auto kWarmup = std::chrono::seconds(1);
const std::string &kToken = blade::bench::kBenchToken;

// Issue targets (at 8 clients).
constexpr double kTargetPairsPerS = 1000;
constexpr double kTargetP99Ms = 20;
constexpr double kTargetIdleRssMb = 15;

struct Endpoint {
  int port = 0;
  std::string create_path;     // POST, expects 201 with data.uid
  std::string destroy_prefix;  // DELETE prefix + uid, expects 200
  std::string body;
};

struct Figures {
  double pairs_per_s = 0;
  double cpu_us_per_pair = 0;  // the server's user+system CPU; 0 when not measured
  double p50_ms = 0;
  double p99_ms = 0;
  long pairs = 0;
  long errors = 0;
};

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
// for the warm-up and then `duration`; only the latter is counted. With a
// `server` pid, its CPU time over the counted window too.
Figures drive(const Endpoint &ep, std::chrono::milliseconds duration, pid_t server = 0) {
  const httplib::Headers headers = {{"X-Api-Token", kToken}};
  const auto start = Clock::now();
  const auto measure_from = start + kWarmup;
  const auto stop_at = measure_from + duration;
  std::mutex m;
  std::vector<double> latencies;
  std::atomic<long> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&] {
      httplib::Client client("127.0.0.1", ep.port);
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);
      client.set_connection_timeout(5);
      client.set_read_timeout(10);
      std::vector<double> mine;
      for (auto now = Clock::now(); now < stop_at; now = Clock::now()) {
        const bool ok = round_trip(client, ep, headers);
        const auto end = Clock::now();
        if (!ok) ++errors;
        if (now >= measure_from && ok)
          mine.push_back(std::chrono::duration<double, std::milli>(end - now).count());
      }
      std::lock_guard lock(m);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  }
  double cpu_before = 0;
  if (server) {
    std::this_thread::sleep_until(measure_from);
    cpu_before = cpu_seconds(server);
  }
  for (auto &t : threads)
    t.join();
  const double cpu = server ? cpu_seconds(server) - cpu_before : 0;
  // The last pairs may end a little after stop_at: count the real window.
  const double secs = std::chrono::duration<double>(Clock::now() - measure_from).count();
  Figures f;
  f.pairs = static_cast<long>(latencies.size());
  f.pairs_per_s = static_cast<double>(f.pairs) / secs;
  f.p50_ms = percentile(latencies, 0.5);
  f.p99_ms = percentile(latencies, 0.99);
  f.errors = errors;
  if (f.pairs > 0) f.cpu_us_per_pair = cpu / static_cast<double>(f.pairs) * 1e6;
  return f;
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
  if (f.cpu_us_per_pair > 0) std::printf("  server CPU %.0f us/pair", f.cpu_us_per_pair);
  std::printf("\n");
  std::fflush(stdout);
}

const char *verdict(bool met) {
  return met ? "met" : "MISSED";
}

}  // namespace

int main(int argc, char **argv) {
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 10;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  if (seconds < 1 || rounds < 1) {
    std::fprintf(stderr, "usage: http_bench [seconds-per-round >= 1] [rounds >= 1]\n");
    return 2;
  }
  const std::vector<std::string> load_args = {"--rate-limit", "0", "--max-active", "0"};
  const fs::path noop = fs::path(BLADE_TEST_PLUGIN_DIR) / "noop_a.so";

  std::printf(
      "http benchmark: %d keep-alive clients, create+destroy pairs, %d s per round after %d s "
      "warm-up, %d rounds\n",
      kClients, seconds, static_cast<int>(kWarmup.count()), rounds);
  std::printf(
      "  bladed: noop_a plugin, durable store, auth + audit, --rate-limit 0 --max-active 0\n");
  std::printf("  baseline: bare cpp-httplib, %d-thread pool, POST /hello + DELETE /hello/{uid}\n",
              kServerThreads);

  std::vector<double> b_rate, b_p50, b_p99, h_rate, h_p50, h_p99, h_cpu;
  long errors = 0;
  std::optional<Bladed> last;
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
      last.emplace(std::vector<fs::path>{noop}, load_args);
      Figures blade = drive(last->endpoint(), std::chrono::seconds(seconds), last->pid());
      print_round(r, "bladed", blade);
      b_rate.push_back(base.pairs_per_s);
      b_p50.push_back(base.p50_ms);
      b_p99.push_back(base.p99_ms);
      h_rate.push_back(blade.pairs_per_s);
      h_p50.push_back(blade.p50_ms);
      h_p99.push_back(blade.p99_ms);
      h_cpu.push_back(blade.cpu_us_per_pair);
      errors += base.errors + blade.errors;
    }
  } catch (const std::exception &e) {
    std::fprintf(stderr, "http_bench: %s\n", e.what());
    return 1;
  }

  // Idle after the load: settle, then the footprint and CPU over a window.
  std::this_thread::sleep_for(std::chrono::seconds(5));
  const double idle_rss = rss_mb(last->pid());
  const double cpu0 = cpu_seconds(last->pid());
  constexpr double kCpuWindow = 5;
  std::this_thread::sleep_for(std::chrono::seconds(static_cast<int>(kCpuWindow)));
  const double idle_cpu_pct = (cpu_seconds(last->pid()) - cpu0) / kCpuWindow * 100.0;
  last.reset();

  // A fresh daemon with every built plugin, before any request.
  const auto plugins = built_plugins();
  double fresh_rss = -1;
  int fresh_plugins = -1;
  try {
    Bladed fresh(plugins, {});
    std::this_thread::sleep_for(std::chrono::seconds(2));
    fresh_rss = rss_mb(fresh.pid());
    httplib::Client c("127.0.0.1", fresh.port());
    if (auto res = c.Get("/v1/health")) {
      auto body = nlohmann::json::parse(res->body, nullptr, false);
      if (body.is_object() && body["data"].is_object() && body["data"]["plugins"].is_number())
        fresh_plugins = body["data"]["plugins"].get<int>();
    }
  } catch (const std::exception &e) {
    std::fprintf(stderr, "http_bench: fresh bladed: %s\n", e.what());
    return 1;
  }

  const double rate = median(h_rate), base_rate = median(b_rate);
  const double p50 = median(h_p50), p99 = median(h_p99);
  std::printf("\n  medians of %d rounds     %10s %10s %10s\n", rounds, "bladed", "baseline",
              "ratio");
  std::printf("  pairs/s                  %10.0f %10.0f %9.2fx\n", rate, base_rate,
              base_rate > 0 ? rate / base_rate : 0.0);
  std::printf("  pair latency p50 (ms)    %10.3f %10.3f %9.2fx\n", p50, median(b_p50),
              median(b_p50) > 0 ? p50 / median(b_p50) : 0.0);
  std::printf("  pair latency p99 (ms)    %10.3f %10.3f %9.2fx\n", p99, median(b_p99),
              median(b_p99) > 0 ? p99 / median(b_p99) : 0.0);
  std::printf("  bladed CPU per pair      %9.0f us (user+system, all its threads)\n",
              median(h_cpu));
  std::printf("  errors                   %10ld\n", errors);
  std::printf("  idle after load: RSS %.1f MiB, CPU %.2f%% over %.0f s\n", idle_rss, idle_cpu_pct,
              kCpuWindow);
  std::printf("  fresh idle with %zu built plugin file(s) (%d loaded): RSS %.1f MiB\n",
              plugins.size(), fresh_plugins, fresh_rss);
  std::printf(
      "  targets: >= %.0f pairs/s %s; p99 < %.0f ms %s; idle RSS < %.0f MiB %s "
      "(after load) / %s (fresh); idle CPU ~0: %.2f%%\n",
      kTargetPairsPerS, verdict(rate >= kTargetPairsPerS), kTargetP99Ms,
      verdict(p99 < kTargetP99Ms), kTargetIdleRssMb, verdict(idle_rss < kTargetIdleRssMb),
      verdict(fresh_rss < kTargetIdleRssMb), idle_cpu_pct);
  // Targets depend on the machine; wrong answers do not.
  return errors == 0 ? 0 : 1;
}
