// A child process run from an argv vector (fork + execve, never a shell),
// with its stdout and stderr captured, for the external fallback.
//
// Every child gets a keeper thread of its own that forks it, drains its
// pipes and reaps it. Three reasons for a thread per child rather than a
// fork on the caller's thread:
//  - PR_SET_PDEATHSIG fires when the *thread* that forked exits, not the
//    process (prctl(2)). A hang action's child must outlive the request
//    thread that created it, yet die with the daemon; its keeper lives
//    exactly as long as the child, so "parent death" means daemon death.
//  - A released (hang) child keeps writing to its pipes; someone must read
//    them, or it blocks on a full pipe (or dies of SIGPIPE if they close).
//  - Someone must reap it when it exits, with no global SIGCHLD handler
//    (which would steal other components' children). The keeper waits on a
//    pidfd, so it learns of the exit at once without polling.
// Signals go through the pidfd while the keeper has not reaped, so a reused
// pid is never signalled.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace blade::detail {

// An owned file descriptor, closed when the object goes.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd &&other) noexcept : fd_(other.release()) {}
  UniqueFd &operator=(UniqueFd &&other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd &) = delete;
  UniqueFd &operator=(const UniqueFd &) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Field 22 of /proc/<pid>/stat: when the process started, in clock ticks
// since boot. With the pid it names one process for the life of the host.
// nullopt when no such process exists.
std::optional<unsigned long long> process_start_time(pid_t pid);

// What ended a wait.
enum class WaitEnd { Exited, DeadlineExpired, Cancelled };

// What terminate_process did.
enum class Termination {
  Gone,          // no such process (already ended): nothing signalled
  Reused,        // the pid now names another process: nothing signalled
  Terminated,    // ended after SIGTERM
  Killed,        // ignored SIGTERM for the grace period, ended after SIGKILL
  StillAlive,    // survived SIGKILL (uninterruptible sleep?)
  NotPermitted,  // not ours to signal
};

// Ends the process `pid` if, and only if, it still is the one that started at
// `start_time`: SIGTERM, up to `grace` for it to exit, then SIGKILL. Works for
// any process, ours or not; a child of ours is reaped by its keeper.
Termination terminate_process(pid_t pid, unsigned long long start_time,
                              std::chrono::milliseconds grace);

// What the owner and the keeper thread share (defined in the .cpp).
struct ChildState;

class ChildProcess {
 public:
  // Each of stdout and stderr keeps at most this much; the rest is read and
  // dropped so the child never blocks on a full pipe.
  static constexpr std::size_t kOutputCap = std::size_t{1} << 20;

  struct Output {
    std::string out;
    std::string err;
    bool out_truncated = false;
    bool err_truncated = false;
  };

  // Starts argv[0] (a path) with argv as its arguments, `env` ("K=V"; the
  // daemon's own environment if nullopt), stdin from /dev/null, in a process
  // group of its own. Throws std::system_error with the errno of whatever
  // failed (fork, exec: ENOENT for a missing binary) once the child has been
  // reaped.
  explicit ChildProcess(std::vector<std::string> argv,
                        std::optional<std::vector<std::string>> env = std::nullopt);
  // A child still owned is killed (SIGKILL, whole group) and reaped.
  ~ChildProcess();
  ChildProcess(const ChildProcess &) = delete;
  ChildProcess &operator=(const ChildProcess &) = delete;

  pid_t pid() const;
  unsigned long long start_time() const;

  // Waits until the child exits and its output is drained, the deadline
  // passes or *cancel becomes true (checked every few ms). Kills nothing.
  WaitEnd wait(std::chrono::steady_clock::time_point deadline,
               const std::atomic<bool> *cancel = nullptr);
  // The wait status (as waitpid gives it) once the child has exited.
  std::optional<int> wait_status() const;
  // What the child has printed so far.
  Output output() const;

  // SIGKILL to the child's process group, then waits for the reap.
  void kill_and_reap();

  // Lets the child run on after this object goes; its keeper still drains
  // its output (dropped) and reaps it when it exits, and it still dies with
  // the daemon. For hang actions.
  void release();

 private:
  std::shared_ptr<ChildState> state_;
  std::thread keeper_;
};

}  // namespace blade::detail
