// strace delay / strace error: ChaosBlade's syscall faults on a running
// process, done in-process with ptrace (strace_tracer.hpp) instead of the
// strace binary. The tracer is a child of the daemon forked by a watcher
// thread (PR_SET_PDEATHSIG follows the forking thread, so it fires only
// when the daemon dies); when it dies for any reason the kernel detaches
// the traced threads and they run on untouched.
//
// Write-ahead: the tracer is forked first and waits; its pid and start time
// and the targets' are saved before it is told to attach. Destroy stops the
// tracer (SIGTERM: a clean detach; SIGKILL after 5 s) and checks that no
// target is still traced by it, from the record alone after a restart.
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <blade/failpoint.hpp>
#include <nlohmann/json.hpp>

#include "../../common/handles.hpp"
#include "fault.hpp"
#include "../../common/int_list.hpp"
#include "../../common/pid_guard.hpp"
#include "proc_table.hpp"
#include "strace_syscalls.hpp"
#include "strace_tracer.hpp"

namespace blade::os {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr std::int64_t kMaxDelayNs = 3600LL * 1000 * 1000 * 1000;  // an hour
constexpr auto kDetachWait = 5s;

// strace's time format: a decimal number with an optional unit s, ms, us or
// ns; no unit means microseconds (ChaosBlade passes the flag to strace).
std::optional<std::int64_t> parse_delay_ns(std::string_view text) {
  struct Unit {
    std::string_view suffix;
    std::int64_t ns;
  };
  static constexpr Unit kUnits[] = {{"ms", 1000000}, {"us", 1000}, {"ns", 1}, {"s", 1000000000}};
  std::int64_t scale = 1000;
  for (const auto &u : kUnits) {
    if (text.size() > u.suffix.size() && text.ends_with(u.suffix)) {
      text.remove_suffix(u.suffix.size());
      scale = u.ns;
      break;
    }
  }
  const auto dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view frac = dot == std::string_view::npos ? "" : text.substr(dot + 1);
  if (whole.empty() || whole.size() > 10 || frac.size() > 9) return std::nullopt;
  for (char c : std::string(whole) + std::string(frac))
    if (c < '0' || c > '9') return std::nullopt;
  std::int64_t w = 0;
  std::from_chars(whole.data(), whole.data() + whole.size(), w);
  std::int64_t f = 0;
  std::int64_t denom = 1;
  for (char c : frac) {
    f = f * 10 + (c - '0');
    denom *= 10;
  }
  if (w > kMaxDelayNs / scale) return std::nullopt;
  return w * scale + f * scale / denom;
}

// The thread that traces `pid` now, or 0.
pid_t tracer_of(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  plugins::DirPtr d(::opendir(dir.c_str()));
  if (!d) return 0;
  while (dirent *e = ::readdir(d.get())) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(dir + "/" + e->d_name + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("TracerPid:", 0) != 0) continue;
      const pid_t tracer = static_cast<pid_t>(std::atoi(line.c_str() + 10));
      if (tracer != 0) return tracer;
      break;
    }
  }
  return 0;
}

std::string comm_of(pid_t pid) {
  auto p = proc::read_process(pid);
  return p ? p->stat.comm : "gone";
}

struct Target {
  pid_t pid = 0;
  std::uint64_t start_time = 0;
  std::string comm;
};

// Everything a create needs, checked before anything happens.
struct Settings {
  TracerPlan plan;
  std::vector<Target> targets;
  std::vector<std::string> syscall_names;
  std::vector<std::string> notes;  // where Blade differs from ChaosBlade
};

std::int64_t positive(const Request &req, std::string_view flag) {
  const std::int64_t v = req.flag_int(flag, 0);
  if (v < 1) throw sdk::InvalidArgument(std::string(flag) + ": must be 1 or more");
  return v;
}

void parse_when(const Request &req, Settings &s) {
  const bool has_first = req.flag("first").has_value();
  const bool has_end = req.flag("end").has_value();
  const bool has_step = req.flag("step").has_value();
  TracerPlan &p = s.plan;
  p.first = has_first ? positive(req, "first") : 1;
  p.step = has_step ? positive(req, "step") : 1;
  p.last = has_end ? positive(req, "end") : 0;
  // strace's when=first alone means that one call only.
  if (has_first && !has_end && !has_step) p.last = p.first;
  if (p.last != 0 && p.last < p.first)
    throw sdk::InvalidArgument("end: " + std::to_string(p.last) + " is before first (" +
                               std::to_string(p.first) + ")");
  if (!has_first && (has_end || has_step))
    s.notes.push_back(
        "end and step count from call 1 without first (ChaosBlade ignores them then and "
        "changes every call)");
}

void parse_syscalls(const Request &req, Settings &s) {
  const std::string text = req.flag_or("syscall-name", "");
  s.syscall_names = plugins::split_comma_list(text);
  if (s.syscall_names.empty()) throw sdk::InvalidArgument("syscall-name: give a syscall name");
  if (s.syscall_names.size() > static_cast<std::size_t>(TracerPlan::kMaxSyscalls))
    throw sdk::InvalidArgument("syscall-name: at most " +
                               std::to_string(TracerPlan::kMaxSyscalls) + " syscalls");
  std::sort(s.syscall_names.begin(), s.syscall_names.end());
  s.syscall_names.erase(std::unique(s.syscall_names.begin(), s.syscall_names.end()),
                        s.syscall_names.end());
  for (const auto &name : s.syscall_names) {
    auto nr = syscall_number(name);
    if (!nr) throw sdk::InvalidArgument("syscall-name: unknown x86_64 syscall '" + name + "'");
    s.plan.syscalls[s.plan.syscall_count++] = *nr;
  }
}

// The processes to trace: whole thread groups, each refused if it must never
// be hit. Tracing is exclusive: a process traced by anyone (a debugger,
// strace, another experiment's tracer) is a 409 naming the tracer.
void resolve_targets(const Request &req, pid_t daemon, Settings &s) {
  for (pid_t pid : plugins::parse_pid_list("pid", req.flag_or("pid", ""))) {
    proc::Process p = plugins::refuse_protected_target("pid", pid, daemon);
    if (std::any_of(s.targets.begin(), s.targets.end(),
                    [&](const Target &t) { return t.pid == p.pid; }))
      continue;
    if (s.targets.size() >= static_cast<std::size_t>(TracerPlan::kMaxTargets))
      throw sdk::InvalidArgument("pid: at most " + std::to_string(TracerPlan::kMaxTargets) +
                                 " processes");
    s.targets.push_back({p.pid, p.stat.start_time, p.stat.comm});
  }
  for (const auto &t : s.targets) s.plan.targets[s.plan.target_count++] = t.pid;
}

std::string already_traced(const Settings &s) {
  for (const auto &t : s.targets) {
    if (pid_t tracer = tracer_of(t.pid)) {
      const std::string comm = comm_of(tracer);
      std::string who = "pid " + std::to_string(tracer) + " (" + comm + ")";
      if (comm == "blade-strace") who += ", the tracer of another strace experiment";
      return "pid: " + std::to_string(t.pid) + " is already traced by " + who +
             "; a process has one tracer at a time";
    }
  }
  return {};
}

Settings parse(const Request &req, bool error_mode, pid_t daemon) {
  Settings s;
  parse_syscalls(req, s);
  parse_when(req, s);
  if (error_mode) {
    const std::string value = req.flag_or("return-value", "");
    auto err = errno_number(value);
    if (!err)
      throw sdk::InvalidArgument("return-value: '" + value +
                                 "' is not an errno name (ENOENT) or number (1-4095)");
    s.plan.inject_error = true;
    s.plan.error = *err;
    if (req.flag("delay-loc"))
      s.notes.push_back("delay-loc is ignored by strace error: the call is skipped at entry");
  } else {
    const std::string time = req.flag_or("time", "");
    auto ns = parse_delay_ns(time);
    if (!ns || *ns < 1)
      throw sdk::InvalidArgument("time: '" + time +
                                 "' is not a delay such as 100ms, 2s, 500us (no unit: "
                                 "microseconds), at most an hour");
    s.plan.delay_ns = *ns;
    const std::string loc = req.flag_or("delay-loc", "enter");
    if (loc != "enter" && loc != "exit")
      throw sdk::InvalidArgument("delay-loc: must be enter or exit");
    s.plan.delay_at_exit = loc == "exit";
    if (req.flag("cgroup-root"))
      s.notes.push_back("cgroup-root is ignored: pid is a pid of the host's namespace");
  }
  resolve_targets(req, daemon, s);
  return s;
}

// The tracer process: forked by a watcher thread that reaps it. It waits
// for go() before attaching. Destroying the object stops it.
class TracerChild {
 public:
  TracerChild(const Host &host, std::string uid, const TracerPlan &plan)
      : host_(host), uid_(std::move(uid)), plan_(plan), tasks_(kMaxTracerTasks) {
    int go[2];
    int report[2];
    if (::pipe2(go, O_CLOEXEC) != 0) throw_errno("cannot make a pipe");
    go_read_.reset(go[0]);
    go_write_.reset(go[1]);
    if (::pipe2(report, O_CLOEXEC) != 0) throw_errno("cannot make a pipe");
    report_read_.reset(report[0]);
    report_write_.reset(report[1]);
    const pid_t parent = ::getpid();
    std::promise<pid_t> forked;
    auto pid_future = forked.get_future();
    int fork_errno = 0;
    watcher_ = std::thread([this, &forked, &fork_errno, parent] {
      const pid_t pid = ::fork();
      if (pid == 0) run_tracer(plan_, tasks_.data(), parent, go_read_.get(), report_write_.get());
      fork_errno = errno;
      forked.set_value(pid);
      if (pid < 0) return;
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      exited_ = true;
      if (attached_ && !stopping_) host_.fault_ended(uid_, ending_of(pid, status));
    });
    pid_ = pid_future.get();
    if (pid_ < 0) {
      watcher_.join();
      errno = fork_errno;
      throw_errno("cannot fork the tracer");
    }
    go_read_.reset();
    report_write_.reset();
    start_time_ = proc::start_time_of(pid_).value_or(0);
  }
  TracerChild(const TracerChild &) = delete;
  TracerChild &operator=(const TracerChild &) = delete;
  ~TracerChild() { stop(); }

  pid_t pid() const { return pid_; }
  std::uint64_t start_time() const { return start_time_; }
  bool exited() const { return exited_; }

  // Lets the tracer attach; its report, or a failure naming the flag.
  TracerReport go() {
    const char byte = 1;
    if (::write(go_write_.get(), &byte, 1) != 1) throw_errno("cannot start the tracer");
    go_write_.reset();
    pollfd pfd{report_read_.get(), POLLIN, 0};
    TracerReport report;
    int ready = 0;
    while ((ready = ::poll(&pfd, 1, 10000)) < 0 && errno == EINTR) {
    }
    const ssize_t n = ready > 0 ? ::read(report_read_.get(), &report, sizeof report) : 0;
    if (n != static_cast<ssize_t>(sizeof report))
      throw sdk::FailedPrecondition("pid: the tracer (pid " + std::to_string(pid_) +
                                    ") did not report its attach");
    // From here an end of the tracer is the running fault's, reported to
    // the host; before, it is this create's failure.
    attached_ = report.ok != 0;
    if (attached_ && exited_)
      throw sdk::FailedPrecondition("pid: every traced process exited during the attach");
    return report;
  }

  // SIGTERM (every thread detached cleanly), SIGKILL if it is not gone
  // within kDetachWait (the kernel then detaches them). Idempotent.
  void stop() {
    if (!watcher_.joinable()) return;
    stopping_ = true;
    go_write_.reset();  // a tracer still waiting for go exits
    if (!exited_) ::kill(pid_, SIGTERM);  // not reaped yet: the pid is still ours
    const auto end = std::chrono::steady_clock::now() + kDetachWait;
    while (!exited_ && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(2ms);
    if (!exited_) ::kill(pid_, SIGKILL);
    watcher_.join();
  }

 private:
  [[noreturn]] static void throw_errno(const std::string &what) {
    throw sdk::FailedPrecondition("pid: " + what + ": " + std::strerror(errno));
  }

  static std::string ending_of(pid_t pid, int status) {
    const std::string who = "the tracer (pid " + std::to_string(pid) + ")";
    if (WIFEXITED(status) && WEXITSTATUS(status) == kTracerTargetsGone)
      return "every traced process exited; " + who + " has nothing left to trace";
    if (WIFSIGNALED(status))
      return who + " was killed by signal " + std::to_string(WTERMSIG(status)) +
             "; the kernel detached the traced processes";
    return who + " exited with status " + std::to_string(WEXITSTATUS(status));
  }

  Host host_;
  std::string uid_;
  TracerPlan plan_;
  std::vector<TracerTask> tasks_;  // the child's table, allocated before the fork
  plugins::UniqueFd go_read_, go_write_, report_read_, report_write_;
  pid_t pid_ = -1;
  std::uint64_t start_time_ = 0;
  std::atomic<bool> exited_{false};
  std::atomic<bool> stopping_{false};  // destroy's stop: not a failure to report
  std::atomic<bool> attached_{false};
  std::thread watcher_;
};

// The error of a failed attach, on the flag.
[[noreturn]] void throw_attach_failure(const TracerReport &r) {
  const std::string what = "pid: cannot trace " + std::to_string(r.tid) + ": ";
  if (r.error == ESRCH) throw sdk::InvalidArgument(what + "the process exited");
  if (r.error == EPERM)
    throw sdk::PermissionDenied(what + std::strerror(r.error) +
                                " (bladed needs CAP_SYS_PTRACE over it, and another tracer "
                                "or kernel.yama.ptrace_scope may forbid it)");
  throw sdk::FailedPrecondition(what + std::strerror(r.error));
}

class StraceFault : public Fault {
 public:
  StraceFault(const Host &host, bool error_mode)
      : host_(host), error_mode_(error_mode), action_(error_mode ? "error" : "delay") {}

  Outcome create(const Request &req, Call &call) override {
    refuse_unsupported_arch();
    Settings s = parse(req, error_mode_, daemon());
    if (auto traced = already_traced(s); !traced.empty()) throw sdk::AlreadyExists(traced);
    // Tracers whose targets all exited were reported and get no destroy.
    std::erase_if(tracers_, [](const auto &kv) { return kv.second->exited(); });
    tracers_.erase(std::string(req.uid()));

    auto tracer = std::make_unique<TracerChild>(host_, std::string(req.uid()), s.plan);
    json restore = {{"tracer", {{"pid", tracer->pid()}, {"start_time", tracer->start_time()}}},
                    {"targets", json::array()}};
    for (const auto &t : s.targets)
      restore["targets"].push_back({{"pid", t.pid}, {"start_time", t.start_time}});
    call.save_restore(restore.dump());
    BLADE_FAILPOINT(("os.strace." + action_ + ".before_attach").c_str());
    const TracerReport report = tracer->go();
    if (!report.ok) throw_attach_failure(report);  // ~TracerChild reaps it
    BLADE_FAILPOINT(("os.strace." + action_ + ".after_attach").c_str());

    json result = describe(s);
    result["tracer_pid"] = tracer->pid();
    host_.info("strace " + action_ + " " + std::string(req.uid()) + ": tracer " +
               std::to_string(tracer->pid()) + " traces " + result["pids"].dump());
    tracers_[std::string(req.uid())] = std::move(tracer);
    return {result.dump(), restore.dump()};
  }

  void destroy(const Request &req, Call &) override {
    auto restore = json::parse(req.restore_json().value_or("{}"), nullptr, false);
    if (!restore.is_object()) restore = json::object();
    const pid_t tracer_pid = restore.contains("tracer") ? restore["tracer"].value("pid", 0) : 0;
    const std::string point = "os.strace." + action_ + ".destroy.";
    if (auto it = tracers_.find(std::string(req.uid())); it != tracers_.end()) {
      BLADE_FAILPOINT((point + "before_detach").c_str());
      it->second->stop();
      tracers_.erase(it);
      BLADE_FAILPOINT((point + "after_detach").c_str());
    } else if (tracer_pid > 1) {
      // After a restart the tracer died with the old daemon (PDEATHSIG);
      // stop it only if it is provably the same process.
      const auto start = restore["tracer"].value("start_time", std::uint64_t{0});
      if (start != 0 && proc::same_process(proc::start_time_of(tracer_pid), start)) {
        BLADE_FAILPOINT((point + "before_detach").c_str());
        if (proc::signal_if_same(tracer_pid, start, SIGTERM) == 0)
          wait_gone(tracer_pid, start, kDetachWait);
        if (proc::signal_if_same(tracer_pid, start, SIGKILL) == 0) wait_gone(tracer_pid, start, 1s);
        BLADE_FAILPOINT((point + "after_detach").c_str());
      }
    }
    if (tracer_pid > 1) check_detached(restore, tracer_pid);
  }

  std::string plan(const Request &req, Call &) override {
    refuse_unsupported_arch();
    Settings s = parse(req, error_mode_, daemon());
    json plan = describe(s);
    if (auto traced = already_traced(s); !traced.empty()) plan["note"] = traced;
    return plan.dump();
  }

 private:
  static void refuse_unsupported_arch() {
#if !defined(__x86_64__)
    throw sdk::NotSupported("strace: only x86_64 hosts are supported (registers and syscall table)");
#endif
    if (kSyscallTableSize == 0)
      throw sdk::NotSupported("strace: this os plugin was built without the x86_64 syscall table");
  }

  pid_t daemon() const { return host_.daemon_pid() > 0 ? host_.daemon_pid() : ::getpid(); }

  json describe(const Settings &s) const {
    json pids = json::array();
    json processes = json::array();
    for (const auto &t : s.targets) {
      pids.push_back(t.pid);
      processes.push_back({{"pid", t.pid}, {"name", t.comm}, {"start_time", t.start_time}});
    }
    json out = {{"pids", pids},
                {"processes", processes},
                {"syscalls", s.syscall_names},
                {"first", s.plan.first},
                {"step", s.plan.step}};
    out["end"] = s.plan.last == 0 ? json(nullptr) : json(s.plan.last);
    if (error_mode_) {
      out["errno"] = errno_name(s.plan.error);
      out["return_value"] = -s.plan.error;
    } else {
      out["delay_us"] = static_cast<double>(s.plan.delay_ns) / 1000.0;
      out["delay_loc"] = s.plan.delay_at_exit ? "exit" : "enter";
    }
    if (!s.notes.empty()) out["notes"] = s.notes;
    return out;
  }

  static void wait_gone(pid_t pid, std::uint64_t start, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (proc::same_process(proc::start_time_of(pid), start) &&
           std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(5ms);
  }

  // A target still traced by the recorded tracer (once its exit has
  // reached the kernel) means the detach failed: the destroy fails and is
  // retried rather than say destroyed.
  static void check_detached(const json &restore, pid_t tracer_pid) {
    if (!restore.contains("targets") || !restore["targets"].is_array()) return;
    for (const auto &t : restore["targets"]) {
      const pid_t pid = t.value("pid", 0);
      const auto start = t.value("start_time", std::uint64_t{0});
      if (pid <= 1) continue;
      const auto end = std::chrono::steady_clock::now() + kDetachWait;
      while (proc::same_process(proc::start_time_of(pid), start) && tracer_of(pid) == tracer_pid &&
             std::chrono::steady_clock::now() < end)
        std::this_thread::sleep_for(5ms);
      if (proc::same_process(proc::start_time_of(pid), start) && tracer_of(pid) == tracer_pid)
        throw sdk::FailedPrecondition("pid: " + std::to_string(pid) +
                                      " is still traced by the tracer " +
                                      std::to_string(tracer_pid));
    }
  }

  Host host_;
  bool error_mode_;
  std::string action_;
  std::map<std::string, std::unique_ptr<TracerChild>> tracers_;
};

}  // namespace

void register_strace_faults(FaultTable &table, const Host &host) {
  table.add("strace", "delay", std::make_unique<StraceFault>(host, false));
  table.add("strace", "error", std::make_unique<StraceFault>(host, true));
}

}  // namespace blade::os
