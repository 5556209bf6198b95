// The tracer of `strace delay|error`: a child process of bladed that
// ptraces every thread of the target processes (PTRACE_SEIZE, new threads
// and children followed through PTRACE_O_TRACECLONE/FORK/VFORK, like
// `strace -f`), stops them at each syscall (PTRACE_SYSCALL with
// TRACESYSGOOD) and, for the chosen syscalls, holds the thread for the delay
// at entry or exit, or makes the call fail: at entry the syscall number
// becomes -1 so the kernel skips the call, and the return register is set
// to -errno both at entry and at exit. Setting it at entry too means a
// tracer killed between the two stops still leaves the errno, not -ENOSYS.
//
// SIGTERM: every thread is detached (held ones at once, the others after a
// PTRACE_INTERRUPT, a pending signal passed on) and the tracer exits 0. If
// the tracer dies any other way the kernel detaches the threads itself.
#pragma once

#include <sys/types.h>
#include <time.h>

#include <cstdint>

namespace blade::os {

// What to do, copied whole into the forked child (no pointers, no heap).
struct TracerPlan {
  static constexpr int kMaxTargets = 64;
  static constexpr int kMaxSyscalls = 32;
  pid_t targets[kMaxTargets] = {};
  int target_count = 0;
  long syscalls[kMaxSyscalls] = {};
  int syscall_count = 0;
  bool inject_error = false;  // else delay
  int error = 0;              // errno for inject_error
  bool delay_at_exit = false;
  std::int64_t delay_ns = 0;
  // Which calls of each syscall, counted per thread from 1 as strace does:
  // first, first+step, ... up to last (0: no end).
  std::int64_t first = 1;
  std::int64_t last = 0;
  std::int64_t step = 1;
};

// One traced thread. The table is allocated by the daemon before the fork,
// so the tracer never allocates.
struct TracerTask {
  pid_t tid = 0;
  bool in_injected_call = false;  // error: between entry and exit
  bool delay_at_exit = false;     // delay: hold at this call's exit
  bool held = false;              // stopped until resume_at
  bool detaching = false;         // interrupted on the way out
  timespec resume_at{};
  std::int32_t hits[TracerPlan::kMaxSyscalls] = {};
};
inline constexpr int kMaxTracerTasks = 4096;

// Sent once on the report pipe after the attach: ok, or the errno of the
// PTRACE_SEIZE that failed and on which thread.
struct TracerReport {
  int ok = 0;
  int error = 0;
  pid_t tid = 0;
};

// The tracer's exit codes.
inline constexpr int kTracerDetached = 0;     // SIGTERM: all detached
inline constexpr int kTracerTargetsGone = 3;  // every traced thread exited
inline constexpr int kTracerAttachFailed = 4;
inline constexpr int kTracerNotStarted = 5;  // the daemon never said go

// Runs in the forked child: async-signal-safe calls only. Waits for one byte
// on `go_fd` (the daemon has saved the restore record), attaches, reports on
// `report_fd`, then traces until SIGTERM or until nothing is left to trace.
[[noreturn]] void run_tracer(const TracerPlan &plan, TracerTask *tasks, pid_t parent, int go_fd,
                             int report_fd);

}  // namespace blade::os
