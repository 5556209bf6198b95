// The cri plugin's number (issue: time from the API call to the fault in
// effect inside a runc container, p50 goal < 20 ms), beside the same fault
// on the host by the os plugin, in the same run and the same bladed:
//   process stop (by pid): POST /v1/experiments until /proc/<pid>/stat of the target
//     says T (the container's process seen by its host pid), then destroy
//     and wait until it runs again;
//   file delete: POST until the file is gone (the container's seen through
//     its init's root), then destroy and wait until it is back;
//   a dry run of process stop: the call's fixed cost (in the container:
//     finding it, and a helper started, entered and answering).
// The container is a busybox runc container (tests/support/runc_container.hpp:
// needs root, runc and busybox-static), deleted at the end.
//   usage: cri_latency_bench [repetitions]
#define DOCTEST_CONFIG_IMPLEMENT
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../tests/support/child_process.hpp"
#include "../tests/support/process_state.hpp"
#include "../tests/support/runc_container.hpp"
#include "bench_bladed.hpp"
#include "bench_stats.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

int g_reps = 50;

// Polls every 100 us; a fault that never takes effect fails the benchmark
// instead of hanging it.
template <class Pred>
void poll_until(Pred pred, const char *what) {
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!pred()) {
    REQUIRE_MESSAGE(Clock::now() < deadline, "timed out waiting for " << what);
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct Figures {
  std::vector<double> effect_ms, answer_ms;
};

// `reps` times: create `body`, wait until `in_effect`, destroy, wait until
// `undone`. The times from the call to the effect and to the HTTP answer.
template <class InEffect, class Undone>
Figures time_to_effect(blade::bench::BenchClient &client, const json &body, InEffect in_effect,
                       Undone undone) {
  Figures f;
  for (int i = 0; i < g_reps; ++i) {
    const auto t0 = Clock::now();
    const auto uid = client.create(body).at("uid").get<std::string>();
    f.answer_ms.push_back(ms_since(t0));
    poll_until(in_effect, "the fault to take effect");
    f.effect_ms.push_back(ms_since(t0));
    client.destroy(uid);
    poll_until(undone, "the fault to be undone");
  }
  return f;
}

void print(const char *what, const Figures &host, const Figures &ctr) {
  using blade::bench::percentile;
  const double h50 = percentile(host.effect_ms, 0.5), c50 = percentile(ctr.effect_ms, 0.5);
  std::printf("  %s\n", what);
  std::printf("    host (os):         in effect after p50 %7.2f ms, p95 %7.2f ms (answer p50 %.2f ms)\n",
              h50, percentile(host.effect_ms, 0.95), percentile(host.answer_ms, 0.5));
  std::printf("    runc container:    in effect after p50 %7.2f ms, p95 %7.2f ms (answer p50 %.2f ms)\n",
              c50, percentile(ctr.effect_ms, 0.95), percentile(ctr.answer_ms, 0.5));
  std::printf("    container / host:  p50 %.2fx; goal p50 < 20 ms in the container: %s\n",
              c50 / std::max(0.001, h50), c50 < 20 ? "met" : "MISSED");
}

bool running(char state) { return state == 'S' || state == 'R'; }

// `reps` dry runs of `body` (200, nothing changed): the fixed cost of a
// call, for the cri plugin finding the container and a helper's round trip
// (started, entered, answered) with no fault applied.
std::vector<double> dry_run_ms(int port, json body) {
  httplib::Client c("127.0.0.1", port);
  const httplib::Headers auth = {{"X-Api-Token", blade::bench::kBenchToken}};
  body["dry_run"] = true;
  std::vector<double> out;
  for (int i = 0; i < g_reps; ++i) {
    const auto t0 = Clock::now();
    const auto r = c.Post("/v1/experiments", auth, body.dump(), "application/json");
    out.push_back(ms_since(t0));
    REQUIRE_MESSAGE((r && r->status == 200), (r ? r->body : std::string("no answer")));
  }
  return out;
}

// The pid a process has in its own pid namespace: the last of the NSpid
// line of /proc/<pid>/status (what `pid` means to a fault inside it).
int pid_inside(pid_t host_pid) {
  std::ifstream in("/proc/" + std::to_string(host_pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("NSpid:", 0) == 0) return std::stoi(line.substr(line.find_last_of(" \t") + 1));
  FAIL("no NSpid line for " << host_pid);
  return 0;
}

}  // namespace

TEST_CASE("cri latency: call to effect in a runc container beside the host") {
  blade::test::RuncOptions o;
  const blade::test::TempDir twin("cri-bench");
  const fs::path host_file = twin / "host.conf", ctr_file = twin / "container.conf";
  o.files[ctr_file.string()] = "inside\n";
  blade::test::RuncContainer ctr(o);
  const fs::path seen_inside = ctr.proc() / "root" / ctr_file.relative_path();
  std::ofstream(host_file) << "host\n";

  blade::bench::BenchBladed bladed({fs::path(BLADE_BUILT_PLUGIN_DIR) / "os.so",
                                    fs::path(BLADE_BUILT_PLUGIN_DIR) / "cri.so",
                                    fs::path(BLADE_CRI_HELPER_PATH)},
                                   {"--rate-limit", "0"});
  blade::bench::BenchClient client(bladed.port());
  const json in_ctr = {{"container-id", ctr.id()},
                       {"container-runtime", "runc"},
                       {"container-state-root", ctr.root().string()}};
  std::printf("cri latency benchmark: %d calls each, runc container %s\n", g_reps,
              ctr.id().c_str());

  // process stop by pid (the os benchmark's matcher): a sleeper on the
  // host and one in the container, named by the pid each has where the
  // fault runs.
  blade::test::ChildProcess host_sleeper({"/bin/sleep", "4344"});
  const pid_t ctr_sleeper = ctr.exec_detached({"/bin/sleep", "4343"});
  poll_until([&] { return running(blade::test::process_state(host_sleeper.pid())); }, "host sleeper");
  poll_until([&] { return running(blade::test::process_state(ctr_sleeper)); }, "container sleeper");
  const auto host_stop = time_to_effect(
      client, {{"target", "process"}, {"action", "stop"}, {"flags", {{"pid", std::to_string(host_sleeper.pid())}}}},
      [&] { return blade::test::process_state(host_sleeper.pid()) == 'T'; },
      [&] { return running(blade::test::process_state(host_sleeper.pid())); });
  json flags = in_ctr;
  flags["pid"] = std::to_string(pid_inside(ctr_sleeper));
  const auto ctr_stop = time_to_effect(
      client, {{"scope", "cri"}, {"target", "process"}, {"action", "stop"}, {"flags", flags}},
      [&] { return blade::test::process_state(ctr_sleeper) == 'T'; },
      [&] { return running(blade::test::process_state(ctr_sleeper)); });

  // file delete.
  const auto host_delete = time_to_effect(
      client, {{"target", "file"}, {"action", "delete"}, {"flags", {{"filepath", host_file.string()}}}},
      [&] { return !fs::exists(host_file); }, [&] { return fs::exists(host_file); });
  flags = in_ctr;
  flags["filepath"] = ctr_file.string();
  const auto ctr_delete = time_to_effect(
      client, {{"scope", "cri"}, {"target", "file"}, {"action", "delete"}, {"flags", flags}},
      [&] { return !fs::exists(seen_inside); }, [&] { return fs::exists(seen_inside); });

  const auto host_dry = dry_run_ms(
      bladed.port(),
      {{"target", "process"}, {"action", "stop"}, {"flags", {{"pid", std::to_string(host_sleeper.pid())}}}});
  flags = in_ctr;
  flags["pid"] = std::to_string(pid_inside(ctr_sleeper));
  const auto ctr_dry = dry_run_ms(
      bladed.port(), {{"scope", "cri"}, {"target", "process"}, {"action", "stop"}, {"flags", flags}});

  print("process stop (state T in /proc)", host_stop, ctr_stop);
  print("file delete (the file gone)", host_delete, ctr_delete);
  using blade::bench::percentile;
  std::printf("  dry run of process stop (the call alone; in the container: finding it and a\n"
              "  helper started, entered and answering):\n"
              "    host p50 %.2f ms, p95 %.2f ms; container p50 %.2f ms, p95 %.2f ms\n",
              percentile(host_dry, 0.5), percentile(host_dry, 0.95), percentile(ctr_dry, 0.5),
              percentile(ctr_dry, 0.95));
}

int main(int argc, char **argv) {
  if (argc > 1) g_reps = std::atoi(argv[1]);
  if (g_reps < 1) {
    std::fprintf(stderr, "usage: cri_latency_bench [repetitions >= 1]\n");
    return 2;
  }
  doctest::Context context;
  return context.run();
}
