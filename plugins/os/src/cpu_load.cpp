// cpu fullload, in ChaosBlade's two meanings. With cpu-list, each listed
// core is held at cpu-percent of TOTAL utilisation (existing load counts).
// Without it, cpu-percent is the whole host's average utilisation and
// cpu-count only how many burners work toward it, so few burners on many
// cores cannot reach a high average (the result says how far they can).
// With the cgroup meter (the host's config {"cpu_meter":"cgroup"}, which the
// cri helper passes inside a container) and no cpu-list, the average is
// the process's cgroup's usage against its capacity (its cpu quota, else
// the cores it may run on), so 50% in a container limited to 0.5 cpu is 0.25
// of a core. Either way: one burner thread per core, pinned there, a
// feedback loop on what the meter reads (cpu_meter.hpp). The threads belong
// to the daemon, so they die with it: destroy after a restart has nothing to
// stop.
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpu_meter.hpp"
#include "fault.hpp"
#include "meter_config.hpp"
#include "proc_stat.hpp"

namespace blade::os {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Burn/sleep slices: a stop is seen within one. Not 10 ms: the kernel
// charges cpu time by 100 Hz ticks, and a 10 ms cycle beats against them, so
// /proc/stat (and the loop reading it) saw the core swing between far more
// and far less than it really was. 100 ms spans ten ticks in any phase.
constexpr auto kSlice = 100ms;
// How often the loop looks at /proc/stat, and over how long a window it
// judges the core (USER_HZ ticks make a shorter window too coarse).
constexpr auto kTick = 100ms;
constexpr std::size_t kWindowTicks = 10;
// Integral correction, for what the feed-forward misses (timer slack,
// accounting skew); bounded so a burst of other load cannot wind it up. It
// is applied once per whole window: correcting every tick on a window that
// still holds the last corrections overshoots, and the core oscillates
// around the target (a 3.5-point mean error per second, against stress-ng's
// 0.7, before this).
constexpr double kGain = 0.3;
constexpr double kMaxBias = 0.2;

std::string join(const std::vector<int> &cores) {
  std::string out;
  for (int c : cores)
    out += (out.empty() ? "" : ",") + std::to_string(c);
  return out;
}

// What a set of burners holds at the target: one core (cpu-list: a scope
// per core), the host's average or a cgroup's (one scope shared by every
// burner).
struct Scope {
  Scope(std::unique_ptr<CpuMeter> m, double n) : meter(std::move(m)), burners(n) {}
  const std::unique_ptr<CpuMeter> meter;
  const double burners;  // how many burners share the work
  // All the scope's burners' spinning, summed (ns): wall time, or cpu time
  // when the meter counts that (CpuMeter::counts_cpu_time).
  std::atomic<std::int64_t> spun_ns{0};

  double cores() const { return meter->cores(); }
};

// Burns on one core toward its scope's `target` (0..1) until destroyed.
class CoreBurner {
 public:
  CoreBurner(int core, double target, std::chrono::seconds climb, std::shared_ptr<Scope> scope)
      : core_(core), target_(target), climb_(climb), scope_(std::move(scope)) {
    thread_ = std::thread([this] { run(); });
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core_, &set);
    if (int rc = ::pthread_setaffinity_np(thread_.native_handle(), sizeof(set), &set); rc != 0) {
      stop();
      throw sdk::FailedPrecondition("cannot pin a thread to core " + std::to_string(core_) + ": " +
                                    std::strerror(rc));
    }
  }
  CoreBurner(const CoreBurner &) = delete;
  CoreBurner &operator=(const CoreBurner &) = delete;
  ~CoreBurner() { stop(); }

 private:
  struct Sample {
    Clock::time_point wall;
    CpuTicks ticks;
    std::int64_t spun_ns;
  };

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  // The target now: climbing linearly from 0 over climb_ when one is set.
  double target_at(Clock::time_point now) const {
    if (climb_.count() <= 0) return target_;
    const double done = std::chrono::duration<double>(now - start_) / climb_;
    return target_ * std::min(1.0, done);
  }

  // This burner's duty for `load` (0..1 of the judged cores) to be added.
  double share(double load) const {
    return std::clamp(load * scope_->cores() / scope_->burners, 0.0, 1.0);
  }

  // Feed-forward: the busy share that is not ours is the other load (in a
  // cgroup: its other processes); burn the rest up to the target, split
  // among the scope's burners (a host average of t over M cores with N
  // burners needs each at t*M/N of its core, less the others' share). On
  // /proc/stat "ours" is the wall time spent spinning, not the thread's cpu
  // time: on a VM the hypervisor steals part of every spin, /proc/stat counts
  // that steal as busy, and cpu time leaves it out, so steal looked like
  // other load and the core settled below the target by about the steal
  // (this VM showed up to 50 points of steal). A cgroup counts cpu time
  // only, so there ours is the cpu time got. The integral term trims the
  // residual error.
  void adjust(Clock::time_point now) {
    auto ticks = scope_->meter->read();
    if (!ticks) return;
    window_.push_back({now, *ticks, scope_->spun_ns.load(std::memory_order_relaxed)});
    while (window_.size() > kWindowTicks + 1)
      window_.pop_front();
    const double target = target_at(now);
    if (window_.size() < 2) {
      duty_ = share(target);
      return;
    }
    const Sample &a = window_.front(), &b = window_.back();
    const double wall = std::chrono::duration<double>(b.wall - a.wall).count();
    if (wall <= 0) return;
    const double busy = utilisation_percent(a.ticks, b.ticks) / 100.0;
    const double own = static_cast<double>(b.spun_ns - a.spun_ns) / 1e9 / wall / scope_->cores();
    const double other = std::max(0.0, busy - std::min(own, 1.0));
    if (++ticks_since_correction_ >= kWindowTicks) {
      ticks_since_correction_ = 0;
      bias_ = std::clamp(bias_ + kGain * (target - busy), -kMaxBias, kMaxBias);
    }
    duty_ = share(target - other + bias_);
  }

  void run() {
    auto next_tick = start_;
    auto slice = start_;
    duty_ = share(target_at(start_));
    while (!stop_.load(std::memory_order_relaxed)) {
      auto now = Clock::now();
      if (now >= next_tick) {
        adjust(now);
        next_tick = std::max(next_tick + kTick, now);
      }
      const auto burn = std::chrono::duration_cast<std::chrono::nanoseconds>(kSlice * duty_);
      scope_->spun_ns.fetch_add(
          by_cpu_time_ ? spin_cpu(burn, slice + kSlice) : spin_wall(slice + burn),
          std::memory_order_relaxed);
      slice += kSlice;
      now = Clock::now();
      if (slice < now)
        slice = now;  // preempted past the slice: start afresh
      else
        std::this_thread::sleep_until(slice);
    }
  }

  // Spins until `until`; the wall time spun, in ns.
  std::int64_t spin_wall(Clock::time_point until) const {
    const auto from = Clock::now();
    auto spinning = from;
    while (spinning < until && !stop_.load(std::memory_order_relaxed)) {
      spinning = Clock::now();  // spin: this is the load
    }
    return std::chrono::duration_cast<std::chrono::nanoseconds>(spinning - from).count();
  }

  // Spins until this thread got `burn` of cpu time, or `until` (the slice's
  // end) passed; the cpu time got, in ns.
  std::int64_t spin_cpu(std::chrono::nanoseconds burn, Clock::time_point until) const {
    const std::int64_t from = thread_cpu_ns();
    std::int64_t got = 0;
    while (got < burn.count() && !stop_.load(std::memory_order_relaxed) && Clock::now() < until) {
      got = thread_cpu_ns() - from;  // spin: this is the load
    }
    return got;
  }

  static std::int64_t thread_cpu_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  }

  const int core_;
  const double target_;
  const std::chrono::seconds climb_;
  const std::shared_ptr<Scope> scope_;
  const bool by_cpu_time_ = scope_->meter->counts_cpu_time();
  const Clock::time_point start_ = Clock::now();
  std::atomic<bool> stop_{false};
  // Only the burner thread touches these.
  double duty_ = 0;
  std::size_t ticks_since_correction_ = 0;
  double bias_ = 0;
  std::deque<Sample> window_;
  std::thread thread_;  // last: starts after every member above exists
};

struct Selection {
  enum class Mode { per_core, host_average, cgroup_average };
  Mode mode = Mode::host_average;
  std::vector<int> cores;  // where burners run, one each
  int host_cores = 0;      // host-average mode: the cores the average is over
  // cgroup-average mode: the cgroup, its quota and the cores it may use;
  // the capacity is the lower of the two.
  std::optional<CgroupCpu> cgroup;
  std::optional<double> quota_cores;
  int cpus = 0;
  double capacity = 0;
  int percent = 100;
  int climb = 0;
  bool cgroup_meter_asked = false;  // configured, even where cpu-list overrides it
  std::optional<std::string> cgroup_root;

  bool per_core() const { return mode == Mode::per_core; }

  // The cores the average is over, for the modes that average.
  double averaged_cores() const {
    return mode == Mode::cgroup_average ? capacity : static_cast<double>(host_cores);
  }

  // The most the burners alone add to the average, in percent.
  double reachable() const {
    return per_core() ? percent
                      : std::min<double>(
                            percent, 100.0 * static_cast<double>(cores.size()) / averaged_cores());
  }

  std::unique_ptr<CpuMeter> meter(int core) const {
    switch (mode) {
      case Mode::per_core:
        return core_meter(core);
      case Mode::host_average:
        return host_meter(host_cores);
      case Mode::cgroup_average:
        break;
    }
    return cgroup_meter(*cgroup, capacity);
  }

  nlohmann::json describe() const {
    static constexpr const char *kModes[] = {"per-core", "host-average", "cgroup-average"};
    nlohmann::json out = {{"mode", kModes[static_cast<int>(mode)]},
                          {"meter", mode == Mode::cgroup_average ? "cgroup" : "host"},
                          {"cores", cores},
                          {"cpu_percent", percent}};
    nlohmann::json notes = nlohmann::json::array();
    if (mode == Mode::host_average) {
      out["cpu_count"] = cores.size();
      out["host_cores"] = host_cores;
      out["reachable_host_percent"] = reachable();
      if (reachable() < percent) {
        notes.push_back(std::to_string(cores.size()) + " burner(s) on a host of " +
                        std::to_string(host_cores) + " cores raise its average by at most " +
                        std::to_string(static_cast<int>(reachable())) + " points; " +
                        std::to_string(percent) +
                        "% is reached only if other load makes up the rest (give more "
                        "cpu-count, or cpu-list to hold each core at the percent)");
      }
    }
    if (mode == Mode::cgroup_average) {
      out["cpu_count"] = cores.size();
      out["cgroup"] = cgroup->usage_dir;
      out["capacity_cores"] = capacity;
      out["quota_cores"] = quota_cores ? nlohmann::json(*quota_cores) : nlohmann::json(nullptr);
      out["cpus"] = cpus;
      out["reachable_percent"] = reachable();
      if (reachable() < percent) {
        notes.push_back(std::to_string(cores.size()) + " burner(s) add at most " +
                        std::to_string(static_cast<int>(reachable())) +
                        " points to the cgroup's use of its capacity; " + std::to_string(percent) +
                        "% is reached only if its other processes make up the rest");
      }
    }
    if (per_core() && cgroup_meter_asked) {
      notes.push_back(
          "cpu-list holds each listed core at the percent of that core, as on the "
          "host; the cgroup meter judges the whole cgroup only without cpu-list");
    }
    if (climb > 0) out["climb_time"] = climb;
    if (cgroup_root) {
      out["cgroup_root"] = *cgroup_root;
      notes.push_back(
          "cgroup-root is not used: ChaosBlade reads it only to size a load inside a "
          "container it enters, and Blade judges the host, or the cgroup it runs in when "
          "configured to (the cri target)");
    }
    if (!notes.empty()) out["notes"] = notes;
    return out;
  }
};

class CpuFullload : public Fault {
 public:
  explicit CpuFullload(const Host &host) : host_(host), config_(host.config_json()) {}

  Outcome create(const Request &req, Call &) override {
    const Selection s = select(req);
    // Same uid again (a retried create): replace, never leak the old threads.
    loads_.erase(std::string(req.uid()));
    std::vector<std::unique_ptr<CoreBurner>> burners;
    std::shared_ptr<Scope> shared;
    if (!s.per_core())
      shared = std::make_shared<Scope>(s.meter(-1), static_cast<double>(s.cores.size()));
    for (int core : s.cores) {  // a throw here joins the ones already started
      auto scope = shared ? shared : std::make_shared<Scope>(s.meter(core), 1.0);
      burners.push_back(std::make_unique<CoreBurner>(core, s.percent / 100.0,
                                                     std::chrono::seconds(s.climb), scope));
    }
    loads_[std::string(req.uid())] = std::move(burners);
    static constexpr const char *kWhat[] = {"on each of cores ", "host average, burners on cores ",
                                            "cgroup average, burners on cores "};
    host_.info("cpu fullload " + std::string(req.uid()) + ": " + std::to_string(s.percent) + "% " +
               kWhat[static_cast<int>(s.mode)] + join(s.cores));
    nlohmann::json restore = {{"cores", s.cores}, {"percent", s.percent}};
    return {s.describe().dump(), restore.dump()};
  }

  // The threads are this instance's; after a restart none exist, and the
  // record has nothing else to undo.
  void destroy(const Request &req, Call &) override {
    auto it = loads_.find(std::string(req.uid()));
    if (it == loads_.end()) return;
    loads_.erase(it);  // joins every burner (each sees the stop within a slice)
    host_.info("cpu fullload " + std::string(req.uid()) + " stopped");
  }

  std::string plan(const Request &req, Call &) override {
    const Selection s = select(req);
    const auto before = read_cpu_ticks();
    const auto host_before = read_host_ticks();
    std::unique_ptr<CpuMeter> cgroup;
    std::optional<CpuTicks> cgroup_before;
    if (s.mode == Selection::Mode::cgroup_average) {
      cgroup = s.meter(-1);
      cgroup_before = cgroup->read();
    }
    std::this_thread::sleep_for(200ms);
    const auto after = read_cpu_ticks();
    const auto host_after = read_host_ticks();
    nlohmann::json now = nlohmann::json::object();
    for (int c : s.cores) {
      auto a = before.find(c), b = after.find(c);
      if (a != before.end() && b != after.end())
        now[std::to_string(c)] = utilisation_percent(a->second, b->second);
    }
    nlohmann::json plan = s.describe();
    plan["current_utilisation"] = now;
    if (host_before && host_after)
      plan["current_host_utilisation"] = utilisation_percent(*host_before, *host_after);
    if (cgroup) {
      const auto cgroup_after = cgroup->read();
      if (cgroup_before && cgroup_after)
        plan["current_cgroup_utilisation"] = utilisation_percent(*cgroup_before, *cgroup_after);
    }
    return plan.dump();
  }

 private:
  Selection select(const Request &req) const {
    Selection s;
    s.percent = static_cast<int>(req.flag_int("cpu-percent", 100));
    if (s.percent < 0 || s.percent > 100)
      throw sdk::InvalidArgument("cpu-percent: must be between 0 and 100");
    s.climb = static_cast<int>(req.flag_int("climb-time", 0));
    if (s.climb < 0 || s.climb > 600)
      throw sdk::InvalidArgument("climb-time: must be between 0 and 600");
    if (auto root = req.flag("cgroup-root"); root && !root->empty()) s.cgroup_root = *root;
    s.cgroup_meter_asked = meter_from_config(config_, "cpu_meter") == Meter::cgroup;
    const std::vector<int> usable = usable_cpus();
    if (usable.empty()) throw sdk::FailedPrecondition("no usable cpu core found");

    const std::string list = req.flag_or("cpu-list", "");
    if (list.find_first_not_of(" \t") != std::string::npos) {
      s.mode = Selection::Mode::per_core;
      try {
        s.cores = parse_cpu_list(list);
      } catch (const std::invalid_argument &e) {
        throw sdk::InvalidArgument(std::string("cpu-list: ") + e.what());
      }
      for (int c : s.cores) {
        if (!std::binary_search(usable.begin(), usable.end(), c)) {
          throw sdk::InvalidArgument("cpu-list: core " + std::to_string(c) +
                                     " does not exist, is offline or is outside the daemon's "
                                     "cpuset (usable: " +
                                     join(usable) + ")");
        }
      }
      return s;
    }
    if (s.cgroup_meter_asked) {
      // The cgroup's capacity: its quota, but never more than the cores it
      // may run on (a quota of 4 cpus on a 2-core cpuset is 2 cores).
      s.mode = Selection::Mode::cgroup_average;
      s.cgroup = find_cgroup_cpu();
      s.quota_cores = read_quota_cores(*s.cgroup);
      s.cpus = static_cast<int>(usable.size());
      s.capacity = std::min<double>(s.quota_cores.value_or(s.cpus), s.cpus);
    } else {
      // The average is the whole host's, as ChaosBlade reads it: every core
      // /proc/stat lists, also those outside the daemon's cpuset.
      s.host_cores = static_cast<int>(read_cpu_ticks().size());
      if (s.host_cores <= 0) throw sdk::FailedPrecondition("no cpu lines in /proc/stat");
    }
    // As in ChaosBlade, 0 or a count beyond the usable cores means all of them.
    const auto count = req.flag_int("cpu-count", 0);
    if (count < 0) throw sdk::InvalidArgument("cpu-count: must not be negative");
    const auto n =
        count == 0 ? usable.size() : std::min(usable.size(), static_cast<std::size_t>(count));
    s.cores.assign(usable.begin(), usable.begin() + static_cast<std::ptrdiff_t>(n));
    return s;
  }

  Host host_;
  const std::string config_;  // the host's configuration: which meter (meter_config.hpp)
  // uid -> its burners; erasing an entry stops and joins them.
  std::map<std::string, std::vector<std::unique_ptr<CoreBurner>>> loads_;
};

}  // namespace

void register_cpu_faults(FaultTable &table, const Host &host) {
  table.add("cpu", "fullload", std::make_unique<CpuFullload>(host));
}

}  // namespace blade::os
