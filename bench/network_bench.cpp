// The network plugin's netem numbers, measured inside user-mode Linux (the
// host's kernel has no sch_netem), on a veth pair between two network
// namespaces of the guest (tests/network/veth_link.hpp), with a bladed
// loading only network.so born in the sender's namespace:
//   delay fidelity: for asked 10, 50 and 100 ms, the added latency of echo
//     round trips over one TCP connection (each sample minus the baseline's
//     median), p50 and p99, through Blade beside `tc qdisc add ... root
//     netem delay Xms` run by hand in the same kernel, and their ratios;
//   time to effect: UDP probes every 0.5 ms while the fault (delay 50 ms)
//     is created; from the start of the call to the send time of the first
//     probe that arrived delayed, p50 and p90, for Blade's POST and for
//     `tc` run by hand (fork and exec included). Goal: Blade's p50 < 10 ms.
//   usage: network_bench [samples-per-delay] [time-to-effect repetitions]
// It boots the guest itself and runs this binary there with --guest.
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../tests/network/veth_link.hpp"
#include "../tests/support/uml_vm.hpp"
#include "bench_bladed.hpp"
#include "bench_stats.hpp"

namespace fs = std::filesystem;
using namespace blade::test::net;
using blade::bench::percentile;
using nlohmann::json;

namespace {

constexpr int kProbeDelayMs = 50;
constexpr auto kProbeGap = std::chrono::microseconds(500);

struct Added {
  double p50 = 0, p99 = 0;
};

Added added(const std::vector<double> &samples, double base_p50) {
  return {percentile(samples, 0.5) - base_p50, percentile(samples, 0.99) - base_p50};
}

double ratio(double blade, double hand) {
  return hand > 0 ? blade / hand : 0;
}

struct Effect {
  double first_delayed_ms = 0;  // call start -> first delayed probe's send time
  double answer_ms = 0;         // call start -> the call returned
};

// Probes snd -> rcv every kProbeGap while `apply` creates a delay of
// kProbeDelayMs, then `undo` removes it.
Effect time_to_effect(const VethLink &l, UdpReceiver &rx, const std::function<void()> &apply,
                      const std::function<void()> &undo) {
  rx.reset();
  std::atomic<bool> stop{false};
  std::thread prober([&] {
    EnterNetNs in(l.snd);
    send_udp(l.ip, rx.port(), 1 << 30, kProbeGap, 64, 0, 0, &stop);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const std::int64_t t0 = mono_ns();
  apply();
  const double answer = ms_since(t0);
  std::this_thread::sleep_for(std::chrono::milliseconds(2 * kProbeDelayMs + 100));
  stop = true;
  prober.join();
  const UdpTally t = rx.collect(0, std::chrono::milliseconds(2 * kProbeDelayMs + 50));
  undo();
  std::int64_t first = -1;
  for (std::size_t i = 0; i < t.one_way_ms.size(); ++i)
    if (t.one_way_ms[i] >= kProbeDelayMs / 2.0 && (first < 0 || t.sent_at_ns[i] < first))
      first = t.sent_at_ns[i];
  if (first < 0) throw std::runtime_error("no probe arrived delayed: the fault never took effect");
  return {static_cast<double>(first - t0) / 1e6, answer};
}

// What one system call costs here (µs, median of 20 rounds of 1000
// getppid): the scale of every figure, UML's system calls being far dearer
// than a native kernel's.
double syscall_us() {
  std::vector<double> rounds;
  for (int r = 0; r < 20; ++r) {
    const std::int64_t t0 = mono_ns();
    for (int i = 0; i < 1000; ++i)
      ::syscall(SYS_getppid);
    rounds.push_back(static_cast<double>(mono_ns() - t0) / 1e6);
  }
  return percentile(rounds, 0.5);
}

int guest(int samples, int reps) {
  std::printf("a system call costs %.2f us in the guest\n", syscall_us());
  VethLink l;
  auto echo = server_in(l.rcv);
  std::unique_ptr<UdpReceiver> rx;
  {
    EnterNetNs in(l.rcv);
    rx = std::make_unique<UdpReceiver>("0.0.0.0");
  }
  // From here on this thread is in snd: the API over its loopback, the
  // samplers' sockets on the faulted side; the daemon is born there.
  EnterNetNs in_snd(l.snd);
  blade::bench::BenchBladed bladed({fs::path(BLADE_BUILT_PLUGIN_DIR) / "network.so"},
                                   {"--rate-limit", "0"});
  blade::bench::BenchClient client(bladed.port());
  // include-control-ports: netem as the root qdisc; without it (the
  // default), a prio root whose netem band u32 filters feed, sparing the
  // control path.
  auto blade_delay = [&](int ms, bool whole = false) {
    json flags = {{"interface", l.dev}, {"time", ms}};
    if (whole) flags["include-control-ports"] = true;
    return client.create({{"target", "network"}, {"action", "delay"}, {"flags", flags}})
        .at("uid")
        .get<std::string>();
  };
  auto tc_delay = [&](int ms) {
    l.tc({"add", "dev", l.dev, "root", "netem", "delay", std::to_string(ms) + "ms"});
  };
  auto tc_del = [&] { l.tc({"del", "dev", l.dev, "root"}); };

  const auto base = echo_round_trips(l.ip, echo->port(), samples);
  const double base_p50 = percentile(base, 0.5);
  std::printf("baseline echo round trip over veth: p50 %.3f ms, p99 %.3f ms (%d samples)\n\n",
              base_p50, percentile(base, 0.99), samples);
  std::printf("delay fidelity: added latency of TCP echo round trips (%d samples each)\n", samples);
  std::printf("  %-8s | %-19s | %-19s | %-15s\n", "asked", "tc by hand p50/p99", "blade p50/p99",
              "blade/tc p50/p99");
  for (int ms : {10, 50, 100}) {
    tc_delay(ms);
    const Added hand = added(echo_round_trips(l.ip, echo->port(), samples), base_p50);
    tc_del();
    const std::string uid = blade_delay(ms);
    const Added blade = added(echo_round_trips(l.ip, echo->port(), samples), base_p50);
    client.destroy(uid);
    std::printf("  %5d ms | %7.2f / %7.2f ms | %7.2f / %7.2f ms | %5.3f / %5.3f\n", ms, hand.p50,
                hand.p99, blade.p50, blade.p99, ratio(blade.p50, hand.p50),
                ratio(blade.p99, hand.p99));
  }

  std::vector<double> blade_ms, blade_answer_ms, whole_ms, tc_ms, tc_answer_ms, get_ms, dry_ms;
  httplib::Client plain("127.0.0.1", bladed.port());
  for (int i = 0; i < reps; ++i) {
    std::string uid;
    const Effect b = time_to_effect(
        l, *rx, [&] { uid = blade_delay(kProbeDelayMs); }, [&] { client.destroy(uid); });
    blade_ms.push_back(b.first_delayed_ms);
    blade_answer_ms.push_back(b.answer_ms);
    const Effect w = time_to_effect(
        l, *rx, [&] { uid = blade_delay(kProbeDelayMs, true); }, [&] { client.destroy(uid); });
    whole_ms.push_back(w.first_delayed_ms);
    // The floor under any call: a GET answered from the daemon's memory.
    const std::int64_t g0 = mono_ns();
    if (!plain.Get("/v1/experiments?limit=1", {{"X-Api-Token", blade::bench::kBenchToken}}))
      throw std::runtime_error("GET /v1/experiments failed");
    get_ms.push_back(ms_since(g0));
    // And a dry run of the same create: validation and the plugin's plan,
    // nothing stored, nothing applied.
    const std::int64_t d0 = mono_ns();
    const json dry = {{"target", "network"},
                      {"action", "delay"},
                      {"flags", {{"interface", l.dev}, {"time", kProbeDelayMs}}},
                      {"dry_run", true}};
    auto answer = plain.Post("/v1/experiments", {{"X-Api-Token", blade::bench::kBenchToken}},
                             dry.dump(), "application/json");
    if (!answer || answer->status != 200) throw std::runtime_error("dry run failed");
    dry_ms.push_back(ms_since(d0));
    const Effect t = time_to_effect(
        l, *rx, [&] { tc_delay(kProbeDelayMs); }, tc_del);
    tc_ms.push_back(t.first_delayed_ms);
    tc_answer_ms.push_back(t.answer_ms);
  }
  std::printf(
      "\ntime to effect: delay %d ms, UDP probes every %.1f ms, %d repetitions; from the call's "
      "start to the first probe sent that arrived delayed\n",
      kProbeDelayMs, static_cast<double>(kProbeGap.count()) / 1000, reps);
  std::printf("  blade POST /v1/experiments: p50 %.2f ms, p90 %.2f ms (answer p50 %.2f ms)\n",
              percentile(blade_ms, 0.5), percentile(blade_ms, 0.9),
              percentile(blade_answer_ms, 0.5));
  std::printf("  blade, include-control-ports (netem as root): p50 %.2f ms, p90 %.2f ms\n",
              percentile(whole_ms, 0.5), percentile(whole_ms, 0.9));
  std::printf(
      "  for comparison: GET /v1/experiments p50 %.2f ms; the same POST as a dry run p50 "
      "%.2f ms\n",
      percentile(get_ms, 0.5), percentile(dry_ms, 0.5));
  std::printf("  tc by hand (fork+exec):     p50 %.2f ms, p90 %.2f ms (exit p50 %.2f ms)\n",
              percentile(tc_ms, 0.5), percentile(tc_ms, 0.9), percentile(tc_answer_ms, 0.5));
  std::printf("  goal blade p50 < 10 ms: %s\n", percentile(blade_ms, 0.5) < 10 ? "met" : "MISSED");
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc == 4 && std::string(argv[1]) == "--guest") {
    try {
      return guest(std::atoi(argv[2]), std::atoi(argv[3]));
    } catch (const std::exception &e) {
      std::printf("network benchmark failed in the guest: %s\n", e.what());
      return 1;
    }
  }
  const int samples = argc > 1 ? std::atoi(argv[1]) : 100;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 20;
  if (samples < 2 || reps < 1) {
    std::fprintf(stderr, "usage: network_bench [samples-per-delay >= 2] [repetitions >= 1]\n");
    return 2;
  }
  std::error_code ec;
  const std::string self = fs::read_symlink("/proc/self/exe", ec).string();
  blade::test::UmlOptions o;
  o.modules = {"veth", "sch_netem", "sch_prio", "sch_tbf", "cls_u32"};
  o.timeout = std::chrono::seconds(540);
  std::printf(
      "network benchmark: inside user-mode Linux %s (mem %s), veth between two network "
      "namespaces, bladed with only network.so\nreproduce: %s %d %d   (or: meson test -C "
      "<build> --benchmark network --verbose)\n\n",
      blade::test::uml_detail::kernel_version().c_str(), o.mem.c_str(), self.c_str(), samples,
      reps);
  std::printf("a system call costs %.2f us on the host\n", syscall_us());
  std::fflush(stdout);
  const blade::test::UmlResult r =
      blade::test::run_in_uml({self, "--guest", std::to_string(samples), std::to_string(reps)}, o);
  std::printf("%s", r.output.c_str());
  std::printf("\n(user-mode Linux run: %.1f s)\n", r.seconds);
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.report().c_str());
    return 1;
  }
  return 0;
}
