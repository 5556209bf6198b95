// mem load, sized as ChaosBlade sizes it: every second the holder takes
// what is still wanted (ChaosBlade's available figure for the mode, less what
// is to stay: MemTotal*(100-mem-percent)% or reserve), so memory that frees
// up later is taken too, and nothing is given back until destroy. Blade's
// one difference: it never takes the last safety_floor() of MemAvailable, so
// a 100% ask (the default) loads the host without the OOM killer.
// With the cgroup meter (the host's config {"mem_meter":"cgroup"}, which the
// cri helper passes inside a container) every figure is the process's
// memory cgroup's instead: mem-percent is of its limit (mem_figures.hpp).
// mode=ram: a child process of the daemon touches anonymous memory at rate
// MB/s. The child is forked by a watcher thread that waits for it, so
// PR_SET_PDEATHSIG (which follows the forking THREAD) fires only when the
// daemon itself dies. Its OOM score is left alone unless asked.
// mode=cache holds the memory as page cache instead: a file on the tmpfs at
// /dev/shm, grown each second by a thread, removed on destroy (and by the
// recovery at the next start if the daemon died: tmpfs files outlive it).
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include <blade/failpoint.hpp>
#include <nlohmann/json.hpp>

#include "../../common/handles.hpp"
#include "fault.hpp"
#include "mem_figures.hpp"
#include "meter_config.hpp"
#include "proc_table.hpp"

namespace blade::os {
namespace {

using namespace std::chrono_literals;

// ChaosBlade's pace: it looks at the memory once a second.
constexpr auto kResize = 1s;
// How often a stopping sizer notices.
constexpr auto kPoll = 100ms;

// Bytes per step when taking memory at `rate_mb` MB/s: ten steps a second,
// at least a page.
std::uint64_t step_for(std::uint64_t rate_mb) {
  return std::max<std::uint64_t>(rate_mb * kMiB / 10, 4096);
}

// What the daemon's sizer and the forked holder share: one page mapped
// MAP_SHARED before the fork. Lock-free atomics are safe across processes.
struct HolderShare {
  std::atomic<std::uint64_t> target{0};   // bytes the holder is to have touched
  std::atomic<std::uint64_t> touched{0};  // bytes it has touched
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

// The shared page, unmapped when the holder is gone.
class SharedPage {
 public:
  SharedPage() {
    void *p = ::mmap(nullptr, sizeof(HolderShare), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      throw sdk::FailedPrecondition(std::string("cannot map a shared page: ") +
                                    std::strerror(errno));
    share_ = new (p) HolderShare();
  }
  SharedPage(const SharedPage &) = delete;
  SharedPage &operator=(const SharedPage &) = delete;
  ~SharedPage() { ::munmap(share_, sizeof(HolderShare)); }
  HolderShare &operator*() const { return *share_; }
  HolderShare *operator->() const { return share_; }

 private:
  HolderShare *share_ = nullptr;
};

// Runs in the forked child: async-signal-safe calls only (no malloc, locks).
// Touches memory up to the shared target at `step` bytes per 100 ms, and
// holds it; `limit` bounds the address range (MemTotal).
[[noreturn]] void hold_memory(pid_t parent, HolderShare *share, std::uint64_t limit,
                              std::uint64_t step) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);  // the daemon died before the prctl
#ifdef SYS_close_range
  ::syscall(SYS_close_range, 3U, ~0U, 0U);  // not the daemon's sockets and files
#endif
  void *p = ::mmap(nullptr, limit, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) ::_exit(2);
  auto *bytes_at = static_cast<unsigned char *>(p);
  std::uint64_t done = 0;
  for (;;) {
    const std::uint64_t target = std::min(share->target.load(), limit);
    if (done < target) {
      const std::uint64_t n = std::min(step, target - done);
      ::memset(bytes_at + done, 0x5a, n);
      done += n;
      share->touched.store(done);
    }
    timespec pace{0, 100 * 1000 * 1000};
    ::nanosleep(&pace, nullptr);
  }
}

// Why a holder ended, in words for the experiment's error.
std::string ending_of(pid_t pid, int status) {
  const std::string who = "the memory holder (pid " + std::to_string(pid) + ")";
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
    return who + " was killed by SIGKILL, most likely by the OOM killer";
  if (WIFSIGNALED(status)) return who + " was killed by signal " + std::to_string(WTERMSIG(status));
  return who + " exited with status " + std::to_string(WEXITSTATUS(status));
}

// Sleeps `total` in polls of `stop`; false when stopped.
bool wait_unless(const std::atomic<bool> &stop, std::chrono::milliseconds total) {
  for (auto slept = 0ms; slept < total; slept += kPoll) {
    if (stop) return false;
    std::this_thread::sleep_for(kPoll);
  }
  return !stop;
}

// One holder: the watcher thread forks it and reaps it; the sizer thread
// raises its target each second; destroying kills it. A holder that ends any
// other way (the OOM killer) is reported to the host, which marks the
// experiment failed.
class Holder {
 public:
  Holder(const Host &host, std::string uid, const MemTarget &target, MemMeter meter,
         std::uint64_t first, std::uint64_t limit, std::uint64_t rate_mb)
      : target_(target), meter_(std::move(meter)), limit_(limit) {
    const pid_t parent = ::getpid();
    const std::uint64_t step = step_for(rate_mb);
    share_->target = std::min(first, limit_);
    HolderShare *share = &*share_;
    std::promise<pid_t> forked;
    auto pid_future = forked.get_future();
    watcher_ = std::thread([&forked, parent, share, limit, step, host, uid, this] {
      const pid_t pid = ::fork();
      if (pid == 0) hold_memory(parent, share, limit, step);
      forked.set_value(pid);
      if (pid < 0) return;
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      exited_ = true;
      if (!stopping_) host.fault_ended(uid, ending_of(pid, status));
    });
    pid_ = pid_future.get();
    if (pid_ < 0) {
      watcher_.join();
      throw sdk::FailedPrecondition(std::string("cannot fork the memory holder: ") +
                                    std::strerror(errno));
    }
    start_time_ = proc::start_time_of(pid_).value_or(0);
    sizer_ = std::thread([this] { resize(); });
  }
  Holder(const Holder &) = delete;
  Holder &operator=(const Holder &) = delete;
  ~Holder() {
    stopping_ = true;
    if (!exited_) ::kill(pid_, SIGKILL);  // not yet reaped: the pid is still ours
    watcher_.join();
    sizer_.join();
  }
  pid_t pid() const { return pid_; }
  bool exited() const { return exited_; }
  std::uint64_t start_time() const { return start_time_; }

  // Sets the holder's OOM score (it is still unreaped, so the pid is ours).
  // Returns the score it has now; a refusal (lowering needs
  // CAP_SYS_RESOURCE) leaves the inherited one.
  int set_oom_score_adj(std::optional<int> score) const {
    const std::string path = "/proc/" + std::to_string(pid_) + "/oom_score_adj";
    if (score) std::ofstream(path) << *score << std::flush;
    int now = 0;
    std::ifstream(path) >> now;
    return now;
  }

 private:
  // Once the holder has caught up with its target, each second, what is
  // still wanted is added (never taken back), as ChaosBlade does.
  void resize() {
    while (wait_unless(stopping_, std::chrono::duration_cast<std::chrono::milliseconds>(kResize))) {
      const std::uint64_t target = share_->target.load();
      if (share_->touched.load() < target) continue;  // still climbing at its rate
      try {
        const std::uint64_t more = allowed(target_, meter_.read());
        if (more > 0) share_->target = std::min(limit_, target + more);
      } catch (const std::exception &) {
        // the figures unreadable for a moment: try again next second
      }
    }
  }

  const MemTarget target_;
  const MemMeter meter_;
  const std::uint64_t limit_;
  SharedPage share_;
  pid_t pid_ = -1;
  std::uint64_t start_time_ = 0;
  std::atomic<bool> exited_{false};
  std::atomic<bool> stopping_{false};  // destroy's kill: not a failure to report
  std::thread watcher_;
  std::thread sizer_;
};

constexpr const char *kCacheDir = "/dev/shm";
constexpr long kTmpfsMagic = 0x01021994;

// Bytes the tmpfs can still take: a larger fallocate fails whole.
std::uint64_t tmpfs_room() {
  struct statfs fs {};
  if (::statfs(kCacheDir, &fs) != 0) return 0;
  return static_cast<std::uint64_t>(fs.f_bavail) * static_cast<std::uint64_t>(fs.f_bsize);
}

std::string cache_file_for(std::string_view uid) {
  return std::string(kCacheDir) + "/blade-mem-" + std::string(uid);
}

// Page cache held in a tmpfs file: tmpfs pages cannot be dropped like a disk
// file's cache, so the memory stays used until the file goes. Grown at once
// by what is wanted, then each second by what more is (rate is ram mode's
// only, as ChaosBlade documents it).
class CacheHolder {
 public:
  CacheHolder(std::string path, const MemTarget &target, MemMeter meter, std::uint64_t first)
      : path_(std::move(path)), target_(target), meter_(std::move(meter)) {
    fd_.reset(::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd_)
      throw sdk::FailedPrecondition("mode: cannot create " + path_ + ": " + std::strerror(errno));
    try {
      filler_ = std::thread([this, first] { fill(first); });
    } catch (...) {
      ::unlink(path_.c_str());  // no destructor runs for a half-built holder
      throw;
    }
  }
  CacheHolder(const CacheHolder &) = delete;
  CacheHolder &operator=(const CacheHolder &) = delete;
  ~CacheHolder() {
    stop_ = true;
    filler_.join();
    fd_.reset();
    ::unlink(path_.c_str());
  }

 private:
  void fill(std::uint64_t more) {
    std::uint64_t size = 0;
    for (;;) {
      more = std::min(more, tmpfs_room());
      if (more > 0) {
        // A full tmpfs refuses: the file keeps what it got, and tries again.
        if (::fallocate(fd_.get(), 0, static_cast<off_t>(size), static_cast<off_t>(more)) == 0)
          size += more;
      }
      if (!wait_unless(stop_, std::chrono::duration_cast<std::chrono::milliseconds>(kResize)))
        return;
      try {
        more = allowed(target_, meter_.read());
      } catch (const std::exception &) {
        more = 0;
      }
    }
  }

  std::string path_;
  const MemTarget target_;
  const MemMeter meter_;
  plugins::UniqueFd fd_;
  std::atomic<bool> stop_{false};
  std::thread filler_;
};

// A create's sizing: the user's ask, and the figures at the time.
struct Sizing {
  MemTarget target;
  MemMeter meter;
  MemInfo info;
  std::uint64_t first = 0;  // bytes taken at once (then more each second)
  std::uint64_t rate = 0;   // MB/s, ram mode
  std::optional<int> oom_score_adj;  // asked for; none: left alone
  nlohmann::json notes = nlohmann::json::array();

  nlohmann::json describe() const {
    nlohmann::json out = os::describe(target, info);
    out["bytes"] = first;
    if (!target.cache) out["rate_mb_per_s"] = rate;
    if (!notes.empty()) out["notes"] = notes;
    return out;
  }
};

class MemLoad : public Fault {
 public:
  explicit MemLoad(const Host &host) : host_(host), config_(host.config_json()) {}

  Outcome create(const Request &req, Call &call) override {
    Sizing s = size(req);
    // Holders that ended on their own were reported; their experiments are
    // failed and get no destroy, so they are let go here.
    std::erase_if(holders_, [](const auto &kv) { return kv.second->exited(); });
    holders_.erase(std::string(req.uid()));
    if (s.target.cache) {
      const std::string path = cache_file_for(req.uid());
      caches_.erase(std::string(req.uid()));
      // The tmpfs file outlives a crash of the daemon: its name is saved
      // ahead (and derived from the uid, so a destroy with no record finds
      // it too).
      nlohmann::json restore = {{"mode", "cache"}, {"file", path}};
      call.save_restore(restore.dump());
      BLADE_FAILPOINT("os.mem.load.before_cache_file");
      caches_[std::string(req.uid())] =
          std::make_unique<CacheHolder>(path, s.target, s.meter, s.first);
      BLADE_FAILPOINT("os.mem.load.after_cache_file");
      host_.info("mem load " + std::string(req.uid()) + ": " + path + " takes " +
                 std::to_string(s.first / kMiB) + " MB of page cache");
      nlohmann::json result = s.describe();
      result["file"] = path;
      return {result.dump(), restore.dump()};
    }
    auto holder = std::make_unique<Holder>(host_, std::string(req.uid()), s.target, s.meter,
                                           s.first, s.info.total, s.rate);
    nlohmann::json result = s.describe();
    result["pid"] = holder->pid();
    result["oom_score_adj"] = holder->set_oom_score_adj(s.oom_score_adj);
    if (s.oom_score_adj && result["oom_score_adj"] != *s.oom_score_adj) {
      result["notes"].push_back("the kernel refused oom_score_adj " +
                                std::to_string(*s.oom_score_adj) +
                                " (lowering it needs CAP_SYS_RESOURCE); the holder keeps the "
                                "daemon's");
    }
    nlohmann::json restore = {{"pid", holder->pid()}, {"start_time", holder->start_time()}};
    host_.info("mem load " + std::string(req.uid()) + ": holder " + std::to_string(holder->pid()) +
               " takes " + std::to_string(s.first / kMiB) + " MB");
    holders_[std::string(req.uid())] = std::move(holder);
    return {result.dump(), restore.dump()};
  }

  void destroy(const Request &req, Call &) override {
    if (auto it = caches_.find(std::string(req.uid())); it != caches_.end()) {
      BLADE_FAILPOINT("os.mem.load.destroy.before_unlink");
      caches_.erase(it);  // stops the filler, removes the file
      BLADE_FAILPOINT("os.mem.load.destroy.after_unlink");
      return;
    }
    if (req.flag_or("mode", "ram") == "cache") {
      // After a restart: the tmpfs file outlived the daemon. Only our own
      // name for this uid is ever removed, record or none.
      BLADE_FAILPOINT("os.mem.load.destroy.before_unlink");
      ::unlink(cache_file_for(req.uid()).c_str());
      BLADE_FAILPOINT("os.mem.load.destroy.after_unlink");
      return;
    }
    if (auto it = holders_.find(std::string(req.uid())); it != holders_.end()) {
      holders_.erase(it);  // kills and reaps
      return;
    }
    // After a restart the holder died with the old daemon (PDEATHSIG); kill
    // only a process that is provably the same one.
    auto restore = nlohmann::json::parse(req.restore_json().value_or("{}"), nullptr, false);
    if (!restore.is_object() || !restore.contains("pid")) return;
    const pid_t pid = restore["pid"].get<pid_t>();
    const auto start = restore.value("start_time", std::uint64_t{0});
    if (pid <= 1 || start == 0 || proc::signal_if_same(pid, start, SIGKILL) != 0) return;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (proc::same_process(proc::start_time_of(pid), start) &&
           std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  std::string plan(const Request &req, Call &) override { return size(req).describe().dump(); }

 private:
  // The ask as ChaosBlade reads it: mem-percent first, else reserve, else
  // 100%; then the first bytes to take, cut by the safety floor.
  Sizing size(const Request &req) const {
    Sizing s;
    if (meter_from_config(config_, "mem_meter") == Meter::cgroup)
      s.meter.cgroup = find_cgroup_memory();
    s.target.cache = req.flag_or("mode", "ram") == "cache";
    s.target.include_buffer_cache = req.flag_bool("include-buffer-cache");
    if (s.target.cache) {
      struct statfs fs {};
      if (::statfs(kCacheDir, &fs) != 0 || fs.f_type != kTmpfsMagic)
        throw sdk::FailedPrecondition(std::string("mode: cache needs a tmpfs at ") + kCacheDir);
      if (s.target.include_buffer_cache)
        s.notes.push_back("include-buffer-cache changes nothing in cache mode: buffers and cache "
                          "always count as used there");
    }
    if (req.flag("mem-percent")) {
      s.target.percent = static_cast<int>(req.flag_int("mem-percent", 0));
      if (s.target.percent < 0 || s.target.percent > 100)
        throw sdk::InvalidArgument("mem-percent: must be between 0 and 100");
      // ChaosBlade reads 0 as "no percent" and, without a reserve, takes
      // everything: Blade refuses the ask instead of guessing.
      if (s.target.percent == 0)
        throw sdk::InvalidArgument("mem-percent: 0% asks for no memory; give 1-100 or reserve");
      if (req.flag("reserve"))
        s.notes.push_back("reserve is ignored: mem-percent is given (as in ChaosBlade)");
    } else if (req.flag("reserve")) {
      const auto mb = req.flag_int("reserve", 0);
      if (mb < 0) throw sdk::InvalidArgument("reserve: must not be negative");
      s.target.reserve = static_cast<std::uint64_t>(mb) * kMiB;
    } else {
      s.target.percent = 100;  // ChaosBlade's default
    }
    if (req.flag("rate")) {
      const auto rate = req.flag_int("rate", 100);
      if (rate < 1) throw sdk::InvalidArgument("rate: must be at least 1 MB/s");
      s.rate = static_cast<std::uint64_t>(rate);
      if (s.target.cache)
        s.notes.push_back("rate applies to ram mode only (as in ChaosBlade); cache mode takes its "
                          "memory at once");
    } else {
      s.rate = 100;
    }
    s.oom_score_adj = oom_score(req);
    if (auto root = req.flag("cgroup-root"); root && !root->empty())
      s.notes.push_back(
          "cgroup-root is not used: ChaosBlade reads it only to size a load inside a "
          "container it enters, and Blade sizes by the host, or by the cgroup it runs "
          "in when configured to (the cri target)");
    s.info = s.meter.read();
    s.first = allowed(s.target, s.info);
    if (s.first < s.target.wanted(s.info)) {
      s.notes.push_back(
          "Blade leaves " + std::to_string(safety_floor(s.info) / kMiB) +
          (s.info.cgroup ? " MB of the cgroup's available memory untaken (and never the host's "
                           "last floor) so its processes survive; ChaosBlade would take "
                         : " MB of MemAvailable untaken so the host survives; ChaosBlade would "
                           "take ") +
          std::to_string(s.target.wanted(s.info) / kMiB) + " MB and let the OOM killer act");
    }
    if (s.target.cache && s.first > tmpfs_room()) {
      s.first = tmpfs_room();
      s.notes.push_back("the tmpfs at " + std::string(kCacheDir) + " has room for only " +
                        std::to_string(s.first / kMiB) + " MB; the load holds what fits");
    }
    if (s.target.wanted(s.info) == 0)
      s.notes.push_back("the target is already reached; memory that frees up later is taken");
    return s;
  }

  // None unless asked: the holder keeps the score it inherits from the daemon.
  static std::optional<int> oom_score(const Request &req) {
    const bool avoid = req.flag_bool("avoid-being-killed");
    const bool first = req.flag_bool("oom-first");
    if (avoid && first)
      throw sdk::InvalidArgument("oom-first: cannot be given with avoid-being-killed");
    if (avoid) return -1000;
    if (first) return 1000;
    return std::nullopt;
  }

  Host host_;
  const std::string config_;  // the host's configuration: which meter (meter_config.hpp)
  std::map<std::string, std::unique_ptr<Holder>> holders_;
  std::map<std::string, std::unique_ptr<CacheHolder>> caches_;
};

}  // namespace

void register_mem_faults(FaultTable &table, const Host &host) {
  table.add("mem", "load", std::make_unique<MemLoad>(host));
}

}  // namespace blade::os
