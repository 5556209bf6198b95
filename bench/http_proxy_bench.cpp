// The http plugin's fault proxy under wrk, beside nginx as a plain reverse
// proxy to the same upstream and beside going to the upstream directly, all
// in the same run on this machine:
//   - throughput: wrk -t2 -c32 per target, requests/s and p50/p99 latency;
//     the proxy's and nginx's CPU time per request;
//   - added latency: wrk -t1 -c1 (one request at a time, so a latency is a
//     round trip and not a place in a queue) per target, p50/p99 minus
//     direct's in the same round;
//   - bladed's memory: VmRSS idle with the proxy running, then with 100
//     policies loaded through POST /v1/policies, then after the load;
//   - a delay fault on every request: wrk with many connections through a
//     `http delay` proxy, requests/s against connections / delay, and
//     bladed's thread count while thousands of requests are held.
// The targets run interleaved (direct, nginx 1 process, nginx 2 processes,
// blade-0, blade; repeated per round) so a slow patch of a shared machine
// hits them all, and the figures are medians over the rounds.
//
// The blade proxy applies all policies: 100 policies whose rules do not
// match wrk's request (exact, prefix and regex paths, and a header the
// request lacks on a path it has) are loaded before the runs, so every
// request is checked against 100 rules and forwarded. blade-0 is a second
// proxy in the same bladed following only a policy that does not exist: no
// rule to check. The goals are judged on blade, the harder case.
//
// Fairness: wrk shares the machine's cores with every target alike. nginx
// runs one process (one event loop) as nginx-1p and two as nginx-2p; the
// blade proxy runs on the plugin's small fixed pool of I/O threads.
//
// nginx (upstream and proxies) and wrk come from Debian (tools/dev/
// install-deps.sh --bench); without them, or without the built http
// plugin, the benchmark fails and says why.
//   usage: http_proxy_bench [seconds-per-run] [rounds]
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../tests/support/process_state.hpp"
#include "bench_bladed.hpp"
#include "bench_stats.hpp"
#include "nginx_process.hpp"
#include "process_figures.hpp"
#include "wrk_run.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using blade::bench::median;
using blade::bench::rss_mb;

namespace {

// The goals: against nginx and direct, and the figures an earlier HTTP
// fault-injection design claimed for itself (throughput, memory).
constexpr double kGoalRatioToNginx = 0.8;
constexpr double kGoalAddedP50Us = 50;
constexpr double kClaimRequestsPerS = 12000;
constexpr double kClaimRssMb = 30;

constexpr int kPolicies = 100;
// The delay run: every request held kDelayMs by the proxy, kDelayConnections
// of them at once, so about kDelayConnections requests are always held.
constexpr int kDelayMs = 1000;
constexpr int kDelayConnections = 2000;

const blade::bench::WrkLoad kThroughput{2, 32, 0, 2};
const blade::bench::WrkLoad kOneAtATime{1, 1, 0, 2};

// The CPU time of every process of a target (nginx-2p has two).
double cpu_seconds(const std::vector<pid_t> &pids) {
  double sum = 0;
  for (pid_t pid : pids)
    sum += blade::bench::cpu_seconds(pid);
  return sum;
}

struct Target {
  Target(const char *n, int p, std::vector<pid_t> ps) : name(n), port(p), pids(std::move(ps)) {}
  const char *name;
  int port = 0;
  std::vector<pid_t> pids;  // whose CPU time counts as the target's; none for direct
  // Per round.
  std::vector<double> rate, p50, p99, cpu_us, one_p50, one_p99;
  long errors = 0;
};

// The policy whose rule does not match wrk's GET /: four kinds in turn.
json policy_body(int i) {
  const std::string n = std::to_string(i);
  json match;
  switch (i % 4) {
    case 0:
      match = {{"path", {{"exact", "/bench/" + n + "/probe"}}}};
      break;
    case 1:
      match = {{"path", {{"prefix", "/bench/" + n + "/"}}}, {"method", "POST"}};
      break;
    case 2:
      match = {{"path", {{"regex", "/bench/" + n + "/[a-z]+/[0-9]+"}}}};
      break;
    default:  // the path matches; the header is what the request lacks
      match = {{"path", {{"prefix", "/"}}},
               {"headers", json::array({{{"name", "x-bench-" + n}, {"exact", "1"}}})}};
  }
  char name[32];
  std::snprintf(name, sizeof name, "bench-%03d", i);
  return {
      {"apiVersion", "v1"},
      {"kind", "FaultInjectionPolicy"},
      {"metadata", {{"name", name}}},
      {"spec",
       {{"rules",
         json::array({{{"match", match},
                       {"fault", {{"percentage", 100}, {"abort", {{"httpStatus", 418}}}}}}})}}}};
}

// The port of a proxy experiment, from its result's "listen" (host:port).
int listen_port(const json &experiment) {
  const json &result = experiment.value("result", json::object());
  if (!result.is_object() || !result.contains("listen") || !result["listen"].is_string())
    throw std::runtime_error("the proxy's result has no listen address: " + experiment.dump());
  const std::string listen = result["listen"];
  return std::stoi(listen.substr(listen.rfind(':') + 1));
}

// Polls GET path (with headers) through `port` until it answers `status`.
bool answers(int port, const std::string &path, const httplib::Headers &headers, int status,
             std::chrono::milliseconds within) {
  httplib::Client c("127.0.0.1", port);
  const auto deadline = std::chrono::steady_clock::now() + within;
  do {
    auto r = c.Get(path.c_str(), headers);
    if (r && r->status == status) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

std::string url(int port) {
  return "http://127.0.0.1:" + std::to_string(port) + "/";
}

void print_run(int round, const char *what, const Target &t, const blade::bench::WrkFigures &f,
               double cpu_us) {
  std::printf("  round %d %-10s %-9s %9.0f req/s  p50 %8.1f us  p99 %8.1f us  (%ld requests", round,
              what, t.name, f.requests_per_s, f.p50_us, f.p99_us, f.requests);
  if (f.errors) std::printf(", %ld ERRORS", f.errors);
  std::printf(")");
  if (cpu_us > 0) std::printf("  CPU %.1f us/req", cpu_us);
  std::printf("\n");
  std::fflush(stdout);
}

const char *verdict(bool met) {
  return met ? "met" : "MISSED";
}

// Median over rounds of target minus direct, round by round.
double added(const std::vector<double> &target, const std::vector<double> &direct) {
  std::vector<double> d;
  for (std::size_t i = 0; i < target.size() && i < direct.size(); ++i)
    d.push_back(target[i] - direct[i]);
  return median(d);
}

int fail(const std::string &why) {
  std::fprintf(stderr, "http_proxy_bench: FAILED: %s\n", why.c_str());
  return 1;
}

}  // namespace

int main(int argc, char **argv) {
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 10;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  if (seconds < 1 || rounds < 1) {
    std::fprintf(stderr, "usage: http_proxy_bench [seconds-per-run >= 1] [rounds >= 1]\n");
    return 2;
  }
  const auto nginx = blade::bench::find_program("nginx");
  const auto wrk = blade::bench::find_program("wrk");
  if (!nginx || !wrk)
    return fail(std::string("cannot run: ") + (nginx ? "" : "nginx ") + (wrk ? "" : "wrk ") +
                "not found in PATH or /usr/sbin (tools/dev/install-deps.sh --bench installs "
                "nginx-light and wrk)");
  const fs::path plugin = fs::path(BLADE_BUILT_PLUGIN_DIR) / "http.so";
  if (!fs::exists(plugin))
    return fail("cannot run: the http plugin is not built: " + plugin.string());

  std::printf(
      "http proxy benchmark: wrk -t%d -c%d (throughput) and -t%d -c%d (latency), %d s per run, "
      "%d rounds, interleaved\n",
      kThroughput.threads, kThroughput.connections, kOneAtATime.threads, kOneAtATime.connections,
      seconds, rounds);
  std::printf("  upstream: nginx, 1 process, return 200 \"ok\\n\"; every target forwards to it\n");
  std::printf(
      "  nginx-1p / nginx-2p: nginx reverse proxy, 1 or 2 processes (reuseport), HTTP/1.1 "
      "keep-alive upstream pool\n");
  std::printf(
      "  blade: bladed + http.so, `http proxy` (all policies; %d non-matching loaded); blade-0: "
      "the same following no rule\n",
      kPolicies);
  std::printf("  machine: %ld cores, load average at start: %s", ::sysconf(_SC_NPROCESSORS_ONLN),
              blade::test::read_text("/proc/loadavg").c_str());
  std::fflush(stdout);

  bool ok = true;
  std::vector<std::string> problems;
  try {
    blade::bench::NginxProcess upstream(*nginx, {});
    const std::string upstream_addr = "127.0.0.1:" + std::to_string(upstream.port());
    blade::bench::NginxProcess nginx1(*nginx, {upstream_addr, 1});
    blade::bench::NginxProcess nginx2(*nginx, {upstream_addr, 2});
    blade::bench::BenchBladed bladed({plugin}, {"--rate-limit", "0"});
    blade::bench::BenchClient api(bladed.port());
    const pid_t bpid = bladed.pid();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const double rss_no_proxy = rss_mb(bpid);

    const json proxy =
        api.create({{"target", "http"},
                    {"action", "proxy"},
                    {"flags", {{"listen", "127.0.0.1:0"}, {"upstream", upstream_addr}}}});
    const int proxy_port = listen_port(proxy);
    // The same proxy following one policy that never exists: no rule to
    // check, so the difference between the two is the cost of the 100 rules.
    const json bare = api.create(
        {{"target", "http"},
         {"action", "proxy"},
         {"flags",
          {{"listen", "127.0.0.1:0"}, {"upstream", upstream_addr}, {"policy", "bench-none"}}}});
    const int bare_port = listen_port(bare);
    if (!answers(proxy_port, "/", {}, 200, std::chrono::seconds(5)))
      throw std::runtime_error("GET / through the blade proxy did not answer 200");
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const double rss_idle = rss_mb(bpid);

    // 100 policies, then proof that the proxy follows them: the rule that
    // sorts last (bench-099, the header kind) aborts a request carrying its
    // header, so the whole set reached the proxy.
    double rss_policies = -1;
    try {
      for (int i = 0; i < kPolicies; ++i)
        api.create_policy(policy_body(i));
      char last[32];
      std::snprintf(last, sizeof last, "x-bench-%d", kPolicies - 1);
      if (!answers(proxy_port, "/", {{last, "1"}}, 418, std::chrono::seconds(5)))
        throw std::runtime_error("the proxy did not apply the last policy within 5 s");
      if (!answers(proxy_port, "/", {}, 200, std::chrono::seconds(1)))
        throw std::runtime_error("GET / through the proxy with the policies is not 200");
      std::this_thread::sleep_for(std::chrono::seconds(2));
      rss_policies = rss_mb(bpid);
    } catch (const std::exception &e) {
      ok = false;
      problems.push_back(std::string("policies: ") + e.what() + " (the runs go on without them)");
      std::printf("  POLICIES NOT LOADED: %s\n", e.what());
    }
    const std::size_t threads_idle = blade::test::thread_count(bpid);

    std::vector<Target> targets = {{"direct", upstream.port(), {}},
                                   {"nginx-1p", nginx1.port(), nginx1.pids()},
                                   {"nginx-2p", nginx2.port(), nginx2.pids()},
                                   {"blade-0", bare_port, {bpid}},
                                   {"blade", proxy_port, {bpid}}};
    // Warm-up, not counted: connections, caches, the allocator's arenas.
    for (auto &t : targets) {
      auto load = kThroughput;
      load.seconds = 1;
      blade::bench::run_wrk(*wrk, url(t.port), load);
    }
    for (int r = 1; r <= rounds; ++r) {
      for (auto &t : targets) {
        auto load = kThroughput;
        load.seconds = seconds;
        const double cpu0 = cpu_seconds(t.pids);
        const auto f = blade::bench::run_wrk(*wrk, url(t.port), load);
        const double cpu = cpu_seconds(t.pids) - cpu0;
        const double cpu_us =
            t.pids.empty() || f.requests == 0 ? 0 : cpu / static_cast<double>(f.requests) * 1e6;
        print_run(r, "throughput", t, f, cpu_us);
        t.rate.push_back(f.requests_per_s);
        t.p50.push_back(f.p50_us);
        t.p99.push_back(f.p99_us);
        t.cpu_us.push_back(cpu_us);
        t.errors += f.errors;
      }
      for (auto &t : targets) {
        auto load = kOneAtATime;
        load.seconds = seconds;
        const auto f = blade::bench::run_wrk(*wrk, url(t.port), load);
        print_run(r, "latency", t, f, 0);
        t.one_p50.push_back(f.p50_us);
        t.one_p99.push_back(f.p99_us);
        t.errors += f.errors;
      }
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const double rss_after = rss_mb(bpid);

    // Every request delayed: a second proxy with the one-rule `http delay`.
    const json delayed = api.create({{"target", "http"},
                                     {"action", "delay"},
                                     {"flags",
                                      {{"listen", "127.0.0.1:0"},
                                       {"upstream", upstream_addr},
                                       {"time", kDelayMs},
                                       {"percent", 100}}}});
    std::atomic<bool> sampling{true};
    std::atomic<std::size_t> threads_max{0};
    std::thread sampler([&] {
      while (sampling) {
        threads_max = std::max(threads_max.load(), blade::test::thread_count(bpid));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
    blade::bench::WrkFigures delay_run;
    try {
      delay_run =
          blade::bench::run_wrk(*wrk, url(listen_port(delayed)),
                                {2, kDelayConnections, seconds, std::max(2, 4 * kDelayMs / 1000)});
    } catch (...) {
      sampling = false;
      sampler.join();
      throw;
    }
    sampling = false;
    sampler.join();
    api.destroy(delayed["uid"]);
    const double expected_rate = kDelayConnections * 1000.0 / kDelayMs;
    std::printf(
        "  delay run: -t2 -c%d, every request delayed %d ms: %.0f req/s (connections / delay = "
        "%.0f), p50 %.1f ms, p99 %.1f ms, %ld requests%s; about %.0f requests held at once "
        "(req/s x p50)\n",
        kDelayConnections, kDelayMs, delay_run.requests_per_s, expected_rate,
        delay_run.p50_us / 1e3, delay_run.p99_us / 1e3, delay_run.requests,
        delay_run.errors ? (", " + std::to_string(delay_run.errors) + " ERRORS").c_str() : "",
        delay_run.requests_per_s * delay_run.p50_us / 1e6);

    // Summary.
    const Target &direct = targets[0], &n1 = targets[1], &n2 = targets[2], &bare_t = targets[3],
                 &blade = targets[4];
    std::printf("\n  medians of %d rounds   ", rounds);
    for (const auto &t : targets)
      std::printf(" %10s", t.name);
    std::printf("\n");
    auto row = [&](const char *label, auto field, const char *fmt) {
      std::printf("  %-22s", label);
      for (const auto &t : targets)
        std::printf(fmt, median(std::invoke(field, t)));
      std::printf("\n");
    };
    row("requests/s (-c32)", &Target::rate, " %10.0f");
    row("p50 us (-c32)", &Target::p50, " %10.1f");
    row("p99 us (-c32)", &Target::p99, " %10.1f");
    row("CPU us/request (-c32)", &Target::cpu_us, " %10.1f");
    row("p50 us (-c1)", &Target::one_p50, " %10.1f");
    row("p99 us (-c1)", &Target::one_p99, " %10.1f");
    std::printf("  added over direct, median of per-round differences:\n");
    for (const Target *t : {&n1, &n2, &bare_t, &blade})
      std::printf(
          "    %-9s -c1: p50 %+7.1f us  p99 %+7.1f us    -c32: p50 %+8.1f us  p99 %+8.1f us\n",
          t->name, added(t->one_p50, direct.one_p50), added(t->one_p99, direct.one_p99),
          added(t->p50, direct.p50), added(t->p99, direct.p99));
    const double rate = median(blade.rate);
    const double ratio1 = rate / median(n1.rate), ratio2 = rate / median(n2.rate);
    const double blade_added_p50 = added(blade.one_p50, direct.one_p50);
    std::printf("  blade/nginx requests/s: %.2fx nginx-1p, %.2fx nginx-2p\n", ratio1, ratio2);
    std::printf("  bladed threads: %zu idle, at most %zu during the delay run\n", threads_idle,
                threads_max.load());
    std::printf(
        "  bladed VmRSS: %.1f MiB with http.so loaded, %.1f MiB idle with the proxy, "
        "%.1f MiB with %d policies, %.1f MiB after the runs\n",
        rss_no_proxy, rss_idle, rss_policies, kPolicies, rss_after);
    long errors = 0;
    for (const auto &t : targets)
      errors += t.errors;
    errors += delay_run.errors;
    std::printf("  errors: %ld\n", errors);
    std::printf(
        "  goals: blade/nginx-1p >= %.1f %s (%.2f); blade added p50 (-c1) <= %.0f us %s "
        "(%.1f)\n",
        kGoalRatioToNginx, verdict(ratio1 >= kGoalRatioToNginx), ratio1, kGoalAddedP50Us,
        verdict(blade_added_p50 <= kGoalAddedP50Us), blade_added_p50);
    const double rss_policies_mb = rss_policies * 1.048576;  // MiB to MB (10^6 bytes)
    std::printf(
        "  claims to beat: > %.0f req/s %s (%.0f); < %.0f MB with %d policies %s (%.1f MB)\n",
        kClaimRequestsPerS, verdict(rate > kClaimRequestsPerS), rate, kClaimRssMb, kPolicies,
        verdict(rss_policies > 0 && rss_policies_mb < kClaimRssMb), rss_policies_mb);
    if (errors) {
      ok = false;
      problems.push_back(std::to_string(errors) + " wrk errors");
    }
    api.destroy(bare["uid"]);
    api.destroy(proxy["uid"]);
  } catch (const std::exception &e) {
    return fail(e.what());
  }
  // Goals depend on the machine; errors and a missing piece do not.
  for (const auto &p : problems)
    std::fprintf(stderr, "http_proxy_bench: FAILED: %s\n", p.c_str());
  return ok ? 0 : 1;
}
