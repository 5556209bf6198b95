// mem load: a child process of the daemon touches anonymous memory until the
// host's used memory reaches the target, then holds it. The child is forked
// by a watcher thread that waits for it, so PR_SET_PDEATHSIG (which follows
// the forking THREAD) fires only when the daemon itself dies.
// mode=cache holds the memory as page cache instead: a file on the tmpfs at
// /dev/shm, filled at the rate by a thread, removed on destroy (and by the
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
#include "proc_table.hpp"

namespace blade::os {
namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

// Bytes per step when taking memory at `rate_mb` MB/s: ten steps a second,
// at least a page.
std::uint64_t step_for(std::uint64_t rate_mb) {
  return std::max<std::uint64_t>(rate_mb * kMiB / 10, 4096);
}

struct MemInfo {
  std::uint64_t total = 0;      // bytes
  std::uint64_t available = 0;  // bytes
};

MemInfo read_meminfo() {
  MemInfo m;
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb) {
    std::getline(in, unit);
    if (key == "MemTotal:") m.total = kb * 1024;
    if (key == "MemAvailable:") m.available = kb * 1024;
  }
  if (m.total == 0) throw sdk::FailedPrecondition("cannot read MemTotal from /proc/meminfo");
  return m;
}

// Runs in the forked child: async-signal-safe calls only (no malloc, locks).
[[noreturn]] void hold_memory(pid_t parent, std::uint64_t bytes, std::uint64_t step,
                              const char *oom_adj) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);  // the daemon died before the prctl
#ifdef SYS_close_range
  ::syscall(SYS_close_range, 3U, ~0U, 0U);  // not the daemon's sockets and files
#endif
  int fd = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    (void)!::write(fd, oom_adj, std::strlen(oom_adj));
    ::close(fd);
  }
  void *p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) ::_exit(2);
  auto *bytes_at = static_cast<unsigned char *>(p);
  for (std::uint64_t off = 0; off < bytes; off += step) {
    ::memset(bytes_at + off, 0x5a, bytes - off < step ? bytes - off : step);
    timespec pace{0, 100 * 1000 * 1000};
    if (off + step < bytes) ::nanosleep(&pace, nullptr);
  }
  for (;;)
    ::pause();
}

// Why a holder ended, in words for the experiment's error.
std::string ending_of(pid_t pid, int status) {
  const std::string who = "the memory holder (pid " + std::to_string(pid) + ")";
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
    return who + " was killed by SIGKILL, most likely by the OOM killer";
  if (WIFSIGNALED(status)) return who + " was killed by signal " + std::to_string(WTERMSIG(status));
  return who + " exited with status " + std::to_string(WEXITSTATUS(status));
}

// One holder: the watcher thread forks it and reaps it; destroying kills it.
// A holder that ends any other way (the OOM killer) is reported to the host,
// which marks the experiment failed.
class Holder {
 public:
  Holder(const Host &host, std::string uid, std::uint64_t bytes, std::uint64_t rate_mb,
         bool avoid_kill) {
    const pid_t parent = ::getpid();
    const std::uint64_t step = step_for(rate_mb);
    const char *oom_adj = avoid_kill ? "-1000" : "1000";
    std::promise<pid_t> forked;
    auto pid_future = forked.get_future();
    watcher_ = std::thread([&forked, parent, bytes, step, oom_adj, host, uid, this] {
      const pid_t pid = ::fork();
      if (pid == 0) hold_memory(parent, bytes, step, oom_adj);
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
  }
  Holder(const Holder &) = delete;
  Holder &operator=(const Holder &) = delete;
  ~Holder() {
    stopping_ = true;
    if (!exited_) ::kill(pid_, SIGKILL);  // not yet reaped: the pid is still ours
    watcher_.join();
  }
  pid_t pid() const { return pid_; }
  bool exited() const { return exited_; }
  std::uint64_t start_time() const { return start_time_; }

 private:
  pid_t pid_ = -1;
  std::uint64_t start_time_ = 0;
  std::atomic<bool> exited_{false};
  std::atomic<bool> stopping_{false};  // destroy's kill: not a failure to report
  std::thread watcher_;
};

constexpr const char *kCacheDir = "/dev/shm";
constexpr long kTmpfsMagic = 0x01021994;

std::string cache_file_for(std::string_view uid) {
  return std::string(kCacheDir) + "/blade-mem-" + std::string(uid);
}

// Page cache held in a tmpfs file: tmpfs pages cannot be dropped like a disk
// file's cache, so the memory stays used until the file goes.
class CacheHolder {
 public:
  CacheHolder(std::string path, std::uint64_t bytes, std::uint64_t rate_mb)
      : path_(std::move(path)) {
    fd_.reset(::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd_)
      throw sdk::FailedPrecondition("mode: cannot create " + path_ + ": " + std::strerror(errno));
    const std::uint64_t step = step_for(rate_mb);
    try {
      start_filler(bytes, step);
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
  void start_filler(std::uint64_t bytes, std::uint64_t step) {
    filler_ = std::thread([this, bytes, step] {
      std::uint64_t done = 0;
      auto next = std::chrono::steady_clock::now();
      while (done < bytes && !stop_) {
        const std::uint64_t n = std::min(step, bytes - done);
        if (::fallocate(fd_.get(), 0, static_cast<off_t>(done), static_cast<off_t>(n)) != 0) break;
        done += n;
        next += std::chrono::milliseconds(100);
        std::this_thread::sleep_until(next);
      }
    });
  }

  std::string path_;
  plugins::UniqueFd fd_;
  std::atomic<bool> stop_{false};
  std::thread filler_;
};

class MemLoad : public Fault {
 public:
  explicit MemLoad(const Host &host) : host_(host) {}

  Outcome create(const Request &req, Call &call) override {
    const auto [bytes, info] = bytes_to_hold(req);
    const auto rate = req.flag_int("rate", 100);
    // Holders that ended on their own were reported; their experiments are
    // failed and get no destroy, so they are let go here.
    std::erase_if(holders_, [](const auto &kv) { return kv.second->exited(); });
    holders_.erase(std::string(req.uid()));
    if (req.flag_or("mode", "ram") == "cache") {
      const std::string path = cache_file_for(req.uid());
      caches_.erase(std::string(req.uid()));
      // The tmpfs file outlives a crash of the daemon: its name is saved
      // ahead (and derived from the uid, so a destroy with no record finds
      // it too).
      nlohmann::json restore = {{"mode", "cache"}, {"file", path}};
      call.save_restore(restore.dump());
      BLADE_FAILPOINT("os.mem.load.before_cache_file");
      caches_[std::string(req.uid())] =
          std::make_unique<CacheHolder>(path, bytes, static_cast<std::uint64_t>(rate));
      BLADE_FAILPOINT("os.mem.load.after_cache_file");
      host_.info("mem load " + std::string(req.uid()) + ": " + path + " takes " +
                 std::to_string(bytes / kMiB) + " MB of page cache");
      nlohmann::json result = {{"file", path}, {"bytes", bytes}, {"mode", "cache"}};
      return {result.dump(), restore.dump()};
    }
    auto holder = std::make_unique<Holder>(host_, std::string(req.uid()), bytes,
                                           static_cast<std::uint64_t>(rate),
                                           req.flag_bool("avoid-being-killed"));
    nlohmann::json result = {{"pid", holder->pid()}, {"bytes", bytes}, {"mode", "ram"}};
    nlohmann::json restore = {{"pid", holder->pid()}, {"start_time", holder->start_time()}};
    host_.info("mem load " + std::string(req.uid()) + ": holder " + std::to_string(holder->pid()) +
               " takes " + std::to_string(bytes / kMiB) + " MB");
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

  std::string plan(const Request &req, Call &) override {
    const auto [bytes, info] = bytes_to_hold(req);
    nlohmann::json plan = {{"bytes", bytes},
                           {"mem_total", info.total},
                           {"mem_available", info.available},
                           {"rate_mb_per_s", req.flag_int("rate", 100)}};
    return plan.dump();
  }

 private:
  static std::pair<std::uint64_t, MemInfo> bytes_to_hold(const Request &req) {
    if (req.flag_or("mode", "ram") == "cache") {
      struct statfs fs {};
      if (::statfs(kCacheDir, &fs) != 0 || fs.f_type != kTmpfsMagic)
        throw sdk::FailedPrecondition(std::string("mode: cache needs a tmpfs at ") + kCacheDir);
    }
    const MemInfo m = read_meminfo();
    const std::uint64_t used = m.total - std::min(m.total, m.available);
    if (req.flag("mem-percent")) {
      const auto pct = static_cast<std::uint64_t>(req.flag_int("mem-percent", 0));
      const std::uint64_t target = m.total / 100 * pct;
      if (target <= used) {
        throw sdk::InvalidArgument("mem-percent: " + std::to_string(pct) +
                                   "% is already reached (" + std::to_string(used * 100 / m.total) +
                                   "% in use)");
      }
      return {target - used, m};
    }
    if (req.flag("reserve")) {
      const auto reserve = static_cast<std::uint64_t>(req.flag_int("reserve", 0)) * kMiB;
      if (m.available <= reserve) {
        throw sdk::InvalidArgument("reserve: only " + std::to_string(m.available / kMiB) +
                                   " MB are available");
      }
      return {m.available - reserve, m};
    }
    throw sdk::InvalidArgument("mem-percent: give mem-percent or reserve");
  }

  Host host_;
  std::map<std::string, std::unique_ptr<Holder>> holders_;
  std::map<std::string, std::unique_ptr<CacheHolder>> caches_;
};

}  // namespace

void register_mem_faults(FaultTable &table, const Host &host) {
  table[{"mem", "load"}] = std::make_unique<MemLoad>(host);
}

}  // namespace blade::os
