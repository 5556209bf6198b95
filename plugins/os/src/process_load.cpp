// process load: fills the process table with `count` idle processes, run as
// `user` if given, until destroyed. ChaosBlade starts `ping 127.0.0.1` through
// bash (su for a user) and its destroy kills every "ping 127" on the host;
// here each process is `sleep infinity` with argv[0] set to
// "blade-process-load-<uid>", so it costs no network and no cpu, and destroy
// kills only this experiment's processes: those recorded by pid and start
// time, and any whose command line carries the experiment's marker.
//
// Crash safety: the record naming the marker is saved before the first fork,
// so a crash at any point leaves destroy able to find every process by its
// marker (they outlive bladed, as ChaosBlade's do); once all are started the
// record lists them by pid and start time. Destroy SIGKILLs each that is still
// the same process and reaps those that are bladed's children.
#include "process_load.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <blade/failpoint.hpp>
#include <nlohmann/json.hpp>

#include "../../common/handles.hpp"
#include "experiment_state.hpp"
#include "proc_table.hpp"

namespace blade::os {
namespace {

using nlohmann::json;

constexpr std::int64_t kMaxCount = 10000;
constexpr std::string_view kMarkerPrefix = "blade-process-load-";

std::string marker_of(std::string_view uid) {
  return std::string(kMarkerPrefix) + std::string(uid);
}

// The account the processes run as; nullopt: bladed's own.
struct Account {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

std::optional<Account> lookup_user(const Request &req) {
  auto name = req.flag("user");
  if (!name) return std::nullopt;
  if (name->empty()) throw sdk::InvalidArgument("user: must not be empty");
  passwd pw{};
  passwd *found = nullptr;
  std::vector<char> buf(16384);
  const std::string user(*name);
  const int err = ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
  if (err != 0 || !found)
    throw sdk::InvalidArgument("user: no such user '" + user + "' on this host");
  Account a{user, pw.pw_uid, pw.pw_gid, {}};
  int n = 64;
  a.groups.resize(static_cast<std::size_t>(n));
  if (::getgrouplist(user.c_str(), pw.pw_gid, a.groups.data(), &n) < 0) {
    a.groups.resize(static_cast<std::size_t>(n));
    ::getgrouplist(user.c_str(), pw.pw_gid, a.groups.data(), &n);
  }
  a.groups.resize(static_cast<std::size_t>(std::max(n, 0)));
  return a;
}

// The idle program: a plain `sleep` (coreutils or busybox).
std::string sleep_program() {
  for (const char *path : {"/usr/bin/sleep", "/bin/sleep"})
    if (::access(path, X_OK) == 0) return path;
  throw sdk::FailedPrecondition("process load: no sleep program (/usr/bin/sleep, /bin/sleep)");
}

struct LoadPlan {
  std::int64_t count = 0;
  std::optional<Account> user;
  std::string program;
};

LoadPlan parse(const Request &req) {
  LoadPlan p;
  p.count = req.flag_int("count", 0);
  if (p.count == 0)
    throw sdk::InvalidArgument(
        "count: give how many processes to start (1-" + std::to_string(kMaxCount) +
        "); ChaosBlade's 0 (fork until the process table is full) is not supported");
  if (p.count < 0 || p.count > kMaxCount)
    throw sdk::InvalidArgument("count: must be 1-" + std::to_string(kMaxCount));
  p.user = lookup_user(req);
  p.program = sleep_program();
  return p;
}

// Everything the child needs, built before fork: after it only
// async-signal-safe calls run (bladed has other threads).
struct ChildArgs {
  std::string program;
  std::string argv0;
  std::optional<Account> user;
  int devnull = -1;
};

// Tells the parent why the child could not become the idle process.
[[noreturn]] void child_failed(int report_fd) {
  const int err = errno;
  [[maybe_unused]] auto n = ::write(report_fd, &err, sizeof err);
  ::_exit(127);
}

[[noreturn]] void run_child(const ChildArgs &a, int report_fd) {
  // Its own session: a Ctrl-C at bladed's terminal is not meant for it.
  ::setsid();
  // Signal mask and dispositions are inherited across exec; bladed's
  // (SIGPIPE ignored, signals blocked for its signal thread) are not the
  // idle process's.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig)
    ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int fd = 0; fd < 3; ++fd)
    if (::dup2(a.devnull, fd) < 0) child_failed(report_fd);
  if (a.user) {
    // Raw syscalls: they act on this (only) thread, without glibc's
    // all-threads broadcast.
    if (::syscall(SYS_setgroups, a.user->groups.size(), a.user->groups.data()) != 0)
      child_failed(report_fd);
    if (::syscall(SYS_setresgid, a.user->gid, a.user->gid, a.user->gid) != 0)
      child_failed(report_fd);
    if (::syscall(SYS_setresuid, a.user->uid, a.user->uid, a.user->uid) != 0)
      child_failed(report_fd);
  }
  // No descriptor of bladed's (its listening socket) may outlive it here.
  ::syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
  char *const argv[] = {const_cast<char *>(a.argv0.c_str()), const_cast<char *>("infinity"),
                        nullptr};
  char *const envp[] = {const_cast<char *>("PATH=/usr/bin:/bin"), nullptr};
  ::execve(a.program.c_str(), argv, envp);
  child_failed(report_fd);
}

// Reaps `pid` if it is bladed's child; waits up to ~1 s for a SIGKILL to land.
void reap_if_child(pid_t pid) {
  for (int i = 0; i < 100; ++i) {
    const pid_t r = ::waitpid(pid, nullptr, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return;  // reaped, or not our child
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Starts one process: its pid, or the errno of the fork, the setup or exec.
int spawn(const ChildArgs &a, pid_t &pid) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return errno;
  plugins::UniqueFd read_end(fds[0]);
  plugins::UniqueFd write_end(fds[1]);
  pid = ::fork();
  if (pid < 0) return errno;
  if (pid == 0) run_child(a, write_end.get());
  write_end.reset();
  // EOF: exec went through (the pipe closed on exec); else the child's errno.
  int child_errno = 0;
  ssize_t n = 0;
  do {
    n = ::read(read_end.get(), &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return 0;
  reap_if_child(pid);
  return n == sizeof child_errno ? child_errno : EIO;
}

json entry(pid_t pid, std::uint64_t start_time) {
  return {{"pid", pid}, {"start_time", start_time}};
}

class LoadFault : public Fault {
 public:
  explicit LoadFault(const Host &host) : host_(host), state_(host) {}

  std::string plan(const Request &req, Call &) override {
    LoadPlan p = parse(req);
    return json{{"action", "load"},
                {"count", p.count},
                {"user", p.user ? p.user->name : "(bladed's own)"},
                {"program", p.program},
                {"argv0", marker_of(req.uid())}}
        .dump();
  }

  Outcome create(const Request &req, Call &call) override {
    LoadPlan p = parse(req);
    const std::string uid(req.uid());
    ChildArgs args{p.program, marker_of(uid), p.user, -1};
    plugins::UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!devnull) throw sdk::FailedPrecondition("process load: cannot open /dev/null");
    args.devnull = devnull.get();

    // Ahead of the first fork: the marker finds every process a crash
    // could leave unrecorded.
    json rec = {{"fault", "process load"}, {"marker", args.argv0}, {"processes", json::array()}};
    state_.checkpoint(call, uid, rec);
    int stopped_by = 0;
    try {
      for (std::int64_t i = 0; i < p.count; ++i) {
        call.check();
        BLADE_FAILPOINT("os.process.load.before_spawn");
        pid_t pid = -1;
        const int err = spawn(args, pid);
        if (err != 0) {
          stopped_by = err;
          break;
        }
        BLADE_FAILPOINT("os.process.load.after_spawn");
        auto start = proc::start_time_of(pid);  // our unreaped child: the pid is still its
        if (start) rec["processes"].push_back(entry(pid, *start));
      }
      // EAGAIN is the limit the load is for (the user's processes, or the
      // kernel's threads-max): what started so far is the fault. Anything
      // else is a failure.
      if (stopped_by != 0 && (stopped_by != EAGAIN || rec["processes"].empty())) {
        throw sdk::FailedPrecondition("process load: cannot start process " +
                                      std::to_string(rec["processes"].size() + 1) + " of " +
                                      std::to_string(p.count) + ": " + std::strerror(stopped_by));
      }
      state_.checkpoint(call, uid, rec);
    } catch (...) {
      state_.roll_back(uid, "process load", [&] { end_all(rec, uid); });
      throw;
    }
    const auto started = rec["processes"].size();
    host_.info("process load: started " + std::to_string(started) + " process(es)");
    json result = {{"requested", p.count},
                   {"started", started},
                   {"user", p.user ? p.user->name : "(bladed's own)"},
                   {"argv0", args.argv0},
                   {"processes", rec["processes"]}};
    if (stopped_by != 0)
      result["note"] = "stopped after " + std::to_string(started) +
                       " processes: the process limit was reached (" + std::strerror(stopped_by) +
                       ")";
    return {result.dump(), rec.dump()};
  }

  void destroy(const Request &req, Call &) override {
    end_all(state_.record(req), req.uid());
    state_.finish(req.uid());
  }

 private:
  // SIGKILL to every process of this experiment: the recorded ones, then any
  // the record missed (a crash between a fork and the record) found by the
  // marker. Idempotent: gone or replaced processes are skipped.
  void end_all(const json &record, std::string_view uid) {
    const std::string marker = marker_of(uid);
    std::string errors;
    if (record.is_object()) {
      for (const auto &e : record.value("processes", json::array())) {
        if (e.contains("pid") && e.contains("start_time"))
          end_one(e["pid"].get<pid_t>(), e["start_time"].get<std::uint64_t>(), marker, errors);
      }
    }
    for (pid_t pid : proc::list_pids()) {
      auto p = proc::read_process(pid);
      if (p && owned(*p, marker)) end_one(pid, p->stat.start_time, marker, errors);
    }
    if (!errors.empty()) throw sdk::FailedPrecondition("process load: cannot kill " + errors);
  }

  static bool owned(const proc::Process &p, const std::string &marker) {
    return p.cmdline.starts_with(marker) &&
           (p.cmdline.size() == marker.size() || p.cmdline[marker.size()] == ' ');
  }

  void end_one(pid_t pid, std::uint64_t start, const std::string &marker, std::string &errors) {
    auto p = proc::read_process(pid);
    if (!p || p->stat.start_time != start) return;  // gone, or the pid is another's now
    const bool our_child = p->stat.ppid == ::getpid();
    // A zombie has no command line left; it is ours if bladed is its parent.
    if (!owned(*p, marker) && !(p->dead() && our_child)) return;
    if (!p->dead()) {
      BLADE_FAILPOINT("os.process.load.destroy.before_kill");
      const int err = proc::signal_if_same(pid, start, SIGKILL);
      BLADE_FAILPOINT("os.process.load.destroy.after_kill");
      if (err != 0 && err != ESRCH) {
        errors += (errors.empty() ? "" : "; ") + ("pid " + std::to_string(pid) + ": ") +
                  std::strerror(err);
        return;
      }
    }
    if (our_child) reap_if_child(pid);
  }

  Host host_;
  ExperimentState state_;
};

}  // namespace

void register_process_load(FaultTable &table, const Host &host) {
  table.add("process", "load", std::make_unique<LoadFault>(host));
}

}  // namespace blade::os
