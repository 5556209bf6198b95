// The tracer loop. Everything here runs in a child forked from a
// multithreaded daemon, so it uses only async-signal-safe system calls: no
// allocation, no locks, no stdio. Its state lives in the TracerPlan and the
// task table the daemon built before the fork.
#include "strace_tracer.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/audit.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace blade::os {
namespace {

constexpr unsigned kSeizeOptions = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE |
                                   PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
                                   PTRACE_O_TRACEEXEC;
// x32 syscalls carry this bit; they are not the x86_64 numbers of the table.
constexpr unsigned long kX32Bit = 0x40000000UL;

void *as_arg(long value) { return reinterpret_cast<void *>(value); }

long ptrace_call(int request, pid_t tid, long addr, long data) {
  return ::ptrace(static_cast<__ptrace_request>(request), tid, as_arg(addr), as_arg(data));
}

timespec now() {
  timespec t{};
  ::clock_gettime(CLOCK_MONOTONIC, &t);
  return t;
}

bool before(const timespec &a, const timespec &b) {
  return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

timespec plus_ns(timespec t, std::int64_t ns) {
  t.tv_sec += static_cast<time_t>(ns / 1000000000);
  t.tv_nsec += static_cast<long>(ns % 1000000000);
  if (t.tv_nsec >= 1000000000) {
    t.tv_sec += 1;
    t.tv_nsec -= 1000000000;
  }
  return t;
}

timespec minus(const timespec &a, const timespec &b) {
  timespec d{a.tv_sec - b.tv_sec, a.tv_nsec - b.tv_nsec};
  if (d.tv_nsec < 0) {
    d.tv_sec -= 1;
    d.tv_nsec += 1000000000;
  }
  return d;
}

// Sets the return register; with skip, also the syscall number to -1 (the
// kernel then runs nothing and leaves the return register as set).
bool set_result(pid_t tid, long value, bool skip) {
#if defined(__x86_64__)
  user_regs_struct regs{};
  if (ptrace_call(PTRACE_GETREGS, tid, 0, reinterpret_cast<long>(&regs)) != 0) return false;
  if (skip) regs.orig_rax = static_cast<unsigned long long>(-1L);
  regs.rax = static_cast<unsigned long long>(value);
  return ptrace_call(PTRACE_SETREGS, tid, 0, reinterpret_cast<long>(&regs)) == 0;
#else
  (void)tid;
  (void)value;
  (void)skip;
  return false;
#endif
}

class Tracer {
 public:
  Tracer(const TracerPlan &plan, TracerTask *tasks) : plan_(plan), tasks_(tasks) {}

  // PTRACE_SEIZE on every thread of every target, again until a pass over
  // /proc/<pid>/task finds no new thread (threads started meanwhile by one
  // not yet seized). Each is interrupted so it stops and can be restarted
  // with PTRACE_SYSCALL. False with the report filled on a failure.
  bool attach(TracerReport &report) {
    for (int i = 0; i < plan_.target_count; ++i) {
      for (int pass = 0; pass < 100; ++pass) {
        int added = 0;
        if (!seize_threads_of(plan_.targets[i], added, report)) return false;
        if (added == 0) break;
      }
    }
    report.ok = 1;
    return true;
  }

  [[noreturn]] void run() {
    sigset_t wake;
    sigemptyset(&wake);
    sigaddset(&wake, SIGCHLD);
    sigaddset(&wake, SIGTERM);
    for (;;) {
      for (;;) {
        int status = 0;
        const pid_t tid = ::waitpid(-1, &status, __WALL | WNOHANG);
        if (tid > 0) {
          on_wait(tid, status);
          continue;
        }
        if (tid < 0 && errno == EINTR) continue;
        if (tid < 0 && errno == ECHILD) ::_exit(stopping_ ? kTracerDetached : kTracerTargetsGone);
        break;
      }
      if (count_ == 0) ::_exit(stopping_ ? kTracerDetached : kTracerTargetsGone);
      release_due();
      siginfo_t info{};
      int sig = 0;
      timespec next{};
      if (next_due(next)) {
        const timespec t = now();
        timespec wait = before(t, next) ? minus(next, t) : timespec{0, 0};
        sig = ::sigtimedwait(&wake, &info, &wait);
      } else {
        sig = ::sigwaitinfo(&wake, &info);
      }
      if (sig == SIGTERM && !stopping_) start_detach();
    }
  }

 private:
  bool seize_threads_of(pid_t pid, int &added, TracerReport &report) {
    char path[64];
    std::size_t n = 0;
    const char *prefix = "/proc/";
    for (const char *c = prefix; *c; ++c)
      path[n++] = *c;
    n += format_number(path + n, pid);
    for (const char *c = "/task"; *c; ++c)
      path[n++] = *c;
    path[n] = '\0';
    const int dir = ::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
      report = {0, errno == ENOENT ? ESRCH : errno, pid};
      return false;
    }
    alignas(8) char buf[4096];
    for (;;) {
      const long got = ::syscall(SYS_getdents64, dir, buf, sizeof buf);
      if (got <= 0) break;
      for (long off = 0; off < got;) {
        const auto *d = reinterpret_cast<const dirent64 *>(buf + off);
        off += d->d_reclen;
        const pid_t tid = parse_number(d->d_name);
        if (tid <= 0 || find(tid) >= 0) continue;
        if (ptrace_call(PTRACE_SEIZE, tid, 0, kSeizeOptions) != 0) {
          if (errno == ESRCH && tid != pid) continue;  // a thread that just exited
          report = {0, errno, tid};
          ::close(dir);
          return false;
        }
        if (add(tid) < 0) {
          // More threads than the table holds: leave this one untraced.
          ptrace_call(PTRACE_DETACH, tid, 0, 0);
          continue;
        }
        ptrace_call(PTRACE_INTERRUPT, tid, 0, 0);
        ++added;
      }
    }
    ::close(dir);
    return true;
  }

  static std::size_t format_number(char *out, long v) {
    char digits[24];
    std::size_t n = 0;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v > 0);
    for (std::size_t i = 0; i < n; ++i)
      out[i] = digits[n - 1 - i];
    return n;
  }

  static pid_t parse_number(const char *s) {
    long v = 0;
    if (*s == '\0') return -1;
    for (; *s; ++s) {
      if (*s < '0' || *s > '9') return -1;
      v = v * 10 + (*s - '0');
      if (v > 0x7fffffff) return -1;
    }
    return static_cast<pid_t>(v);
  }

  int find(pid_t tid) const {
    for (int i = 0; i < count_; ++i)
      if (tasks_[i].tid == tid) return i;
    return -1;
  }

  int add(pid_t tid) {
    if (count_ >= kMaxTracerTasks) return -1;
    tasks_[count_] = TracerTask{};
    tasks_[count_].tid = tid;
    return count_++;
  }

  void remove(int i) {
    tasks_[i] = tasks_[count_ - 1];
    --count_;
  }

  void restart(pid_t tid, int sig = 0) { ptrace_call(PTRACE_SYSCALL, tid, 0, sig); }

  void detach(int i, int sig = 0) {
    ptrace_call(PTRACE_DETACH, tasks_[i].tid, 0, sig);
    remove(i);
  }

  void on_wait(pid_t tid, int status) {
    int i = find(tid);
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      if (i >= 0) remove(i);
      return;
    }
    if (!WIFSTOPPED(status)) return;
    if (i < 0) {
      // A thread or child auto-attached through TRACECLONE/FORK/VFORK.
      i = add(tid);
      if (i < 0) {
        ptrace_call(PTRACE_DETACH, tid, 0, 0);
        return;
      }
    }
    const int sig = WSTOPSIG(status);
    const int event = status >> 16;
    if (sig == (SIGTRAP | 0x80)) {
      on_syscall(i);
    } else if (event == PTRACE_EVENT_STOP) {
      const bool group_stop = sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
      if (stopping_) {
        detach(i);
      } else if (group_stop) {
        // Stays stopped as the signal meant; SIGCONT wakes it with another
        // event stop.
        ptrace_call(PTRACE_LISTEN, tid, 0, 0);
      } else {
        restart(tid);
      }
    } else if (event != 0) {
      // clone, fork, vfork, exec: nothing to change.
      if (stopping_) {
        detach(i);
      } else {
        restart(tid);
      }
    } else {
      // A signal on its way to the thread: passed on.
      if (stopping_) {
        detach(i, sig);
      } else {
        restart(tid, sig);
      }
    }
  }

  int matching(unsigned long nr) const {
    if (nr & kX32Bit) return -1;
    for (int s = 0; s < plan_.syscall_count; ++s)
      if (static_cast<unsigned long>(plan_.syscalls[s]) == nr) return s;
    return -1;
  }

  // Whether the n-th call (from 1) is one to change.
  bool chosen(std::int64_t n) const {
    if (n < plan_.first) return false;
    if (plan_.last > 0 && n > plan_.last) return false;
    return (n - plan_.first) % plan_.step == 0;
  }

  void on_syscall(int i) {
    TracerTask &t = tasks_[i];
    const pid_t tid = t.tid;
    __ptrace_syscall_info info{};
    const long got = ptrace_call(PTRACE_GET_SYSCALL_INFO, tid, sizeof info,
                                 reinterpret_cast<long>(&info));
    const bool entry = got > 0 && info.op == PTRACE_SYSCALL_INFO_ENTRY;
    const bool exit = got > 0 && info.op == PTRACE_SYSCALL_INFO_EXIT;
    if (exit && t.in_injected_call) {
      set_result(tid, -static_cast<long>(plan_.error), false);
      t.in_injected_call = false;
    }
    if (stopping_) {
      detach(i);
      return;
    }
    if (exit && t.delay_at_exit) {
      t.delay_at_exit = false;
      hold(t);
      return;
    }
    if (!entry || info.arch != AUDIT_ARCH_X86_64) {
      restart(tid);
      return;
    }
    const int s = matching(info.entry.nr);
    if (s < 0 || !chosen(++t.hits[s])) {
      restart(tid);
      return;
    }
    if (plan_.inject_error) {
      t.in_injected_call = set_result(tid, -static_cast<long>(plan_.error), true);
      restart(tid);
    } else if (plan_.delay_at_exit) {
      t.delay_at_exit = true;
      restart(tid);
    } else {
      hold(t);
    }
  }

  void hold(TracerTask &t) {
    t.held = true;
    t.resume_at = plus_ns(now(), plan_.delay_ns);
  }

  void release_due() {
    const timespec t = now();
    for (int i = 0; i < count_; ++i) {
      if (tasks_[i].held && !before(t, tasks_[i].resume_at)) {
        tasks_[i].held = false;
        restart(tasks_[i].tid);
      }
    }
  }

  bool next_due(timespec &next) const {
    bool any = false;
    for (int i = 0; i < count_; ++i) {
      if (tasks_[i].held && (!any || before(tasks_[i].resume_at, next))) {
        next = tasks_[i].resume_at;
        any = true;
      }
    }
    return any;
  }

  // Held threads are let go at once (their delay cut short); the others are
  // interrupted and detached at their next stop, in on_wait. A thread inside
  // an injected call gets its errno at that call's exit first.
  void start_detach() {
    stopping_ = true;
    for (int i = count_ - 1; i >= 0; --i) {
      if (tasks_[i].held) {
        detach(i);
      } else if (!tasks_[i].detaching) {
        tasks_[i].detaching = true;
        if (ptrace_call(PTRACE_INTERRUPT, tasks_[i].tid, 0, 0) != 0 && errno == ESRCH) remove(i);
      }
    }
  }

  const TracerPlan &plan_;
  TracerTask *tasks_;
  int count_ = 0;
  bool stopping_ = false;
};

// Closes every descriptor above 2 except the two pipes.
void close_other_fds(int a, int b) {
  const int lo = a < b ? a : b;
  const int hi = a < b ? b : a;
  for (int fd = 3; fd < lo; ++fd)
    ::close(fd);
  for (int fd = lo + 1; fd < hi; ++fd)
    ::close(fd);
#ifdef SYS_close_range
  ::syscall(SYS_close_range, static_cast<unsigned>(hi + 1), ~0U, 0U);
#endif
}

}  // namespace

void run_tracer(const TracerPlan &plan, TracerTask *tasks, pid_t parent, int go_fd,
                int report_fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(kTracerNotStarted);  // the daemon died before the prctl
  ::prctl(PR_SET_NAME, "blade-strace");
  // The daemon's handlers (its crash reporter) are not the tracer's.
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    struct sigaction sa {};
    sa.sa_handler = sig == SIGPIPE ? SIG_IGN : SIG_DFL;
    ::sigaction(sig, &sa, nullptr);
  }
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGTERM);
  ::sigprocmask(SIG_SETMASK, &mask, nullptr);
  close_other_fds(go_fd, report_fd);

  char go = 0;
  ssize_t n = 0;
  while ((n = ::read(go_fd, &go, 1)) < 0 && errno == EINTR) {
  }
  if (n != 1) ::_exit(kTracerNotStarted);
  ::close(go_fd);

  Tracer tracer(plan, tasks);
  TracerReport report;
  const bool ok = tracer.attach(report);
  (void)!::write(report_fd, &report, sizeof report);
  ::close(report_fd);
  // On a failure the kernel detaches what was seized when the tracer exits.
  if (!ok) ::_exit(kTracerAttachFailed);
  tracer.run();
}

}  // namespace blade::os
