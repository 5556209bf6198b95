// cpu load and mem load rows: the busy share of the cores from /proc/stat and
// the memory held by bladed's process tree, each over a short hold (the
// machine is shared: a full hold of 50% of its memory would starve the rest).
#include <cmath>
#include <sstream>

#include <nlohmann/json.hpp>

#include "../support/child_process.hpp"
#include "../support/eventually.hpp"
#include "../support/meminfo.hpp"
#include "command_words.hpp"
#include "example_row.hpp"
#include "host_probes.hpp"

namespace blade::test::compat {
namespace {

using namespace std::chrono_literals;

std::string join(const std::vector<int> &cores, const char *sep) {
  std::string s;
  for (int c : cores)
    s += (s.empty() ? "" : sep) + std::to_string(c);
  return s;
}

// The busy share of `cores` (-1: the host's average) over `window`, and the
// cores' worth of cpu bladed's tree used meanwhile.
struct CpuSample {
  std::map<int, double> busy;
  double used = 0;
};

CpuSample sample_cpu(pid_t daemon, const std::vector<int> &cores, std::chrono::milliseconds window) {
  const auto before = core_ticks();
  CpuSample s;
  s.used = tree_cores_used(daemon, window);
  const auto after = core_ticks();
  for (int c : cores)
    s.busy[c] = busy_percent(before, after, c);
  return s;
}

// A cpu row: `cores` held at `percent` each, or (empty) the host's average.
// The machine is shared: when it is already as busy as asked before the
// create, the fault rightly adds nothing, and only the busy share is checked.
Fixture cpu_fixture(Env &env, std::vector<std::string> words, std::string substituted,
                    std::vector<int> cores, double percent) {
  const pid_t daemon = env.bladed_pid();
  if (cores.empty()) cores = {-1};
  const CpuSample base = sample_cpu(daemon, cores, 1000ms);
  Fixture fx;
  fx.words = std::move(words);
  fx.substituted = std::move(substituted);
  fx.effect = [=](const std::string &) {
    std::this_thread::sleep_for(700ms);  // the burners' feedback loop settles
    const CpuSample now = sample_cpu(daemon, cores, 1500ms);
    std::ostringstream what;
    what.precision(0);
    what << std::fixed << "bladed burned " << now.used * 100 << "% of a core;";
    bool ok = true, already_busy = true;
    for (int c : cores) {
      const double busy = now.busy.at(c), was = base.busy.at(c);
      already_busy = already_busy && was >= percent - 5;
      ok = ok && busy >= percent - 15 && (was >= percent - 20 || busy <= percent + 15);
      what << (c < 0 ? " host" : " core " + std::to_string(c)) << " busy " << busy << "% (was "
           << was << "%)";
    }
    ok = ok && (now.used >= 0.1 || already_busy);
    what << ", asked " << percent << "%";
    return Outcome{ok, what.str()};
  };
  fx.clean = [=](const std::string &) {
    const double used = tree_cores_used(daemon, 1000ms);
    std::ostringstream what;
    what.precision(0);
    what << std::fixed << "bladed uses " << used * 100 << "% of a core";
    return Outcome{used < 0.1, what.str()};
  };
  return fx;
}

// A cpu-list the machine has: the example's when its cores are usable here,
// else one of the same shape on the cores there are (said in `why`).
std::vector<int> cores_here(const std::vector<int> &asked, const std::vector<int> &fallback,
                            std::string &why) {
  const auto usable = usable_cores();
  for (int c : asked)
    if (std::find(usable.begin(), usable.end(), c) == usable.end()) {
      why = "this machine has cores " + join(usable, ",") + ", not " + join(asked, ",");
      return fallback;
    }
  return asked;
}

// The memory a mem row may take here: a few percent above what is in use
// (ChaosBlade's 50% would take half of a shared machine's memory). In use is
// as ChaosBlade counts it: all but MemFree + Buffers + Cached in ram mode, all
// but MemFree with include-buffer-cache or in cache mode.
struct MemFigures {
  std::int64_t total = meminfo_mb("MemTotal");
  std::int64_t available = meminfo_mb("MemAvailable");
  std::int64_t free = meminfo_mb("MemFree");
  std::int64_t buffers_cached = meminfo_mb("Buffers") + meminfo_mb("Cached");
  std::int64_t in_use(bool cache_counts_as_used) const {
    return total - free - (cache_counts_as_used ? 0 : buffers_cached);
  }
  int percent_above(std::int64_t used) const {
    return std::min<int>(95, int(std::floor(100.0 * double(used) / double(total))) + 3);
  }
};

// avoid-being-killed: a process of the tree at oom_score_adj -1000; where the
// kernel refuses negative scores (some sandboxes), the experiment's result
// must say so and give the score the holder really has.
Outcome oom_protection(const BladeRunner &blade, pid_t daemon, const std::string &uid) {
  if (tree_oom_protected(daemon) > 0) return held("oom_score_adj < 0 in bladed's tree");
  ChildProcess probe({BLADE_COMPAT_FIXTURE, "oom-probe", "-"});
  if (probe.exit_code(5s) == 0)
    return failed("no process of bladed's tree has a negative oom_score_adj");
  const auto shown = blade.run({"status", uid, "-o", "json"});
  nlohmann::json result;
  try {
    result = nlohmann::json::parse(shown.out).value("result", nlohmann::json::object());
  } catch (const std::exception &) {
  }
  const std::string notes = result.value("notes", nlohmann::json::array()).dump();
  const bool said = result.contains("oom_score_adj") && result["oom_score_adj"] != -1000 &&
                    notes.find("refused") != std::string::npos;
  return {said, "this kernel refuses a negative oom_score_adj (probed); the result " +
                    std::string(said ? "says so: " : "does not say so: ") + result.dump()};
}

// A mem row: the tree (or its /dev/shm file) holds memory, and gives it back.
Fixture mem_fixture(Env &env, std::vector<std::string> words, std::string substituted,
                    bool oom_protected = false) {
  const pid_t daemon = env.bladed_pid();
  const BladeRunner *blade = &env.blade;
  const long long base = tree_rss_mib(daemon);
  Fixture fx;
  fx.words = std::move(words);
  fx.substituted = std::move(substituted);
  fx.effect = [=](const std::string &uid) {
    long long taken = 0;
    const bool grew = eventually(
        [&] {
          taken = tree_rss_mib(daemon) - base + shm_mib_of(uid);
          return taken >= 64;
        },
        6s);
    std::string what = "bladed's tree holds " + std::to_string(taken) + " MiB more";
    if (!grew) return failed(what + " (expected at least 64 MiB)");
    if (oom_protected) {
      const Outcome oom = oom_protection(*blade, daemon, uid);
      return Outcome{oom.ok, what + "; " + oom.what};
    }
    return held(what);
  };
  fx.clean = [=](const std::string &uid) {
    long long rss = 0, shm = 0;
    const bool back = eventually(
        [&] {
          rss = tree_rss_mib(daemon);
          shm = shm_mib_of(uid);
          return rss <= base + 32 && shm == 0;
        },
        5s);
    return Outcome{back, "bladed's tree at " + std::to_string(rss) + " MiB (was " +
                             std::to_string(base) + "), /dev/shm holds " + std::to_string(shm) +
                             " MiB of it"};
  };
  return fx;
}

Row cpu(std::string example, std::function<Fixture(Env &, std::vector<std::string>)> make) {
  return {"cpu", example, [example, make](Env &env) { return make(env, command_words(example)); }};
}

Row mem(std::string example, std::function<Fixture(Env &, std::vector<std::string>)> make) {
  return {"mem", example, [example, make](Env &env) { return make(env, command_words(example)); }};
}

// `--mem-percent 50` replaced by a few percent above what is in use, as the
// mode counts it.
Fixture mem_percent_row(Env &env, std::vector<std::string> words, bool cache_counts_as_used,
                        bool oom_protected = false) {
  const MemFigures m;
  const std::int64_t in_use = m.in_use(cache_counts_as_used);
  const int p = m.percent_above(in_use);
  return mem_fixture(env, with_flag(words, "mem-percent", std::to_string(p)),
                     "--mem-percent " + std::to_string(p) + " for 50: " +
                         std::to_string(100 * in_use / m.total) + "% of " +
                         std::to_string(m.total) + " MiB is in use" +
                         (cache_counts_as_used ? " counting buffers/cache" : "") +
                         "; a short hold of a few percent, not half the shared machine",
                     oom_protected);
}

}  // namespace

std::vector<Row> cpu_mem_rows() {
  return {
      cpu("blade create cpu load",
          [](Env &env, auto words) { return cpu_fixture(env, words, "", usable_cores(), 100); }),
      cpu("blade create cpu load --cpu-percent 60 --cpu-count 2",
          [](Env &env, auto words) { return cpu_fixture(env, words, "", {}, 60); }),
      cpu("blade create cpu load --cpu-list 0,3",
          [](Env &env, auto words) {
            std::string why;
            const auto usable = usable_cores();
            const auto cores = cores_here({0, 3}, {usable.front(), usable.back()}, why);
            if (!why.empty()) words = with_flag(words, "cpu-list", join(cores, ","));
            return cpu_fixture(env, words,
                               why.empty() ? "" : "--cpu-list " + join(cores, ",") + ": " + why,
                               cores, 100);
          }),
      cpu("blade create cpu load --cpu-list 1-3",
          [](Env &env, auto words) {
            std::string why;
            const auto usable = usable_cores();
            const auto cores = cores_here({1, 2, 3}, usable, why);
            const std::string range =
                std::to_string(cores.front()) + "-" + std::to_string(cores.back());
            if (!why.empty()) words = with_flag(words, "cpu-list", range);
            return cpu_fixture(env, words, why.empty() ? "" : "--cpu-list " + range + ": " + why,
                               cores, 100);
          }),
      cpu("blade create cpu load --cpu-percent 60",
          [](Env &env, auto words) { return cpu_fixture(env, words, "", {}, 60); }),

      mem("blade create mem load --mode ram --mem-percent 50",
          [](Env &env, auto words) { return mem_percent_row(env, words, false); }),
      mem("blade create mem load --mode cache --mem-percent 50",
          [](Env &env, auto words) { return mem_percent_row(env, words, true); }),
      mem("blade create mem load --mode ram --mem-percent 50 --include-buffer-cache",
          [](Env &env, auto words) { return mem_percent_row(env, words, true); }),
      mem("blade create mem load --mode ram --mem-percent 50 --avoid-being-killed",
          [](Env &env, auto words) { return mem_percent_row(env, words, false, true); }),
      mem("blade create mem load --mode ram --mem-percent 50 --timeout 200",
          [](Env &env, auto words) { return mem_percent_row(env, words, false); }),
      mem("blade create mem load --mode ram --reserve 200 --rate 100",
          [](Env &env, auto words) {
            const MemFigures m;
            const std::int64_t available = m.total - m.in_use(false);
            const auto reserve = std::to_string(std::max<std::int64_t>(200, available - 600));
            return mem_fixture(env, with_flag(words, "reserve", reserve),
                               "--reserve " + reserve + " for 200: " + std::to_string(available) +
                                   " MiB available (free, buffers, cache); take about 600 MiB, not all but 200");
          }),
  };
}

}  // namespace blade::test::compat
