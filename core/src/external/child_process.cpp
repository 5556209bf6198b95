#include "child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <system_error>
#include <utility>

#include "blade/core/model/log.hpp"

namespace blade::detail {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long a killed child may take to be reaped before its keeper is left to
// finish alone, so a process stuck in uninterruptible sleep cannot hang the
// caller forever.
constexpr milliseconds kReapLimit{5000};
// How often a wait looks at its cancel flag.
constexpr milliseconds kCancelPoll{10};
// How long terminate_process waits after SIGKILL.
constexpr milliseconds kKillWait{2000};

[[noreturn]] void throw_errno(int error, const std::string &what) {
  throw std::system_error(error, std::generic_category(), what);
}

// Through syscall(2) rather than glibc's wrappers, which only glibc 2.36+ has.
int pidfd_open(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int pidfd_send_signal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// fds 0-2 of the daemon may be closed; a pipe end that landed there would be
// clobbered by the child's dup2 onto its stdio.
UniqueFd above_stdio(UniqueFd fd) {
  if (fd.get() > 2) return fd;
  UniqueFd moved(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3));
  if (!moved.valid()) throw_errno(errno, "fcntl(F_DUPFD_CLOEXEC)");
  return moved;
}

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

// O_CLOEXEC from birth: another thread forking at the same moment must not
// inherit it.
Pipe make_pipe() {
  std::array<int, 2> fds{};
  if (::pipe2(fds.data(), O_CLOEXEC) != 0) throw_errno(errno, "pipe2");
  Pipe p{UniqueFd(fds[0]), UniqueFd(fds[1])};
  p.read = above_stdio(std::move(p.read));
  p.write = above_stdio(std::move(p.write));
  return p;
}

UniqueFd open_dev_null() {
  UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) throw_errno(errno, "open /dev/null");
  return above_stdio(std::move(fd));
}

// Everything the child needs, prepared before fork: between fork and exec a
// child of a threaded process may only make async-signal-safe calls.
struct ExecPlan {
  char *const *argv;
  char *const *envp;
  int in;
  int out;
  int err;
  int report;  // write end of the exec-error pipe (close-on-exec)
  pid_t parent;
  int max_fd;  // for the close loop when close_range is unavailable
};

[[noreturn]] void fail_child(int report, int error) noexcept {
  // The keeper reads the errno and reaps us; nothing else is worth doing.
  if (::write(report, &error, sizeof error) < 0) {
  }
  ::_exit(127);
}

void close_between(unsigned first, unsigned last, int max_fd) noexcept {
  if (first > last) return;
  if (::close_range(first, last, 0) == 0) return;
  const unsigned end = std::min(last, static_cast<unsigned>(max_fd));
  for (unsigned fd = first; fd <= end; ++fd)
    ::close(static_cast<int>(fd));
}

// The daemon's other descriptors (sockets, the database, other children's
// pipes) must not leak into a binary we do not control.
void close_fds_except(int keep, int max_fd) noexcept {
  close_between(3, static_cast<unsigned>(keep) - 1, max_fd);
  close_between(static_cast<unsigned>(keep) + 1, ~0U, max_fd);
}

// The keeper forks with every signal blocked, so no daemon handler runs in
// the child; ignored signals would survive exec, so every disposition goes
// back to default before the mask is cleared.
void reset_signals() noexcept {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig)
    ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

[[noreturn]] void exec_child(const ExecPlan &p) noexcept {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail_child(p.report, errno);
  // The daemon died between fork and prctl: nobody would ever kill us.
  if (::getppid() != p.parent) ::_exit(127);
  // A group of its own, so a timeout also kills what the binary started.
  if (::setpgid(0, 0) != 0) fail_child(p.report, errno);
  if (::dup2(p.in, 0) < 0 || ::dup2(p.out, 1) < 0 || ::dup2(p.err, 2) < 0) {
    fail_child(p.report, errno);
  }
  close_fds_except(p.report, p.max_fd);
  reset_signals();
  ::execve(p.argv[0], p.argv, p.envp);
  fail_child(p.report, errno);
}

int max_fd() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 1 << 16;
  return static_cast<int>(std::min<rlim_t>(limit.rlim_cur, 1 << 20));
}

// 0 once the child has exec'd (the close-on-exec pipe reads EOF), else the
// errno it failed with.
int read_exec_report(int fd) {
  int error = 0;
  for (;;) {
    ssize_t n = ::read(fd, &error, sizeof error);
    if (n < 0 && errno == EINTR) continue;
    return n == static_cast<ssize_t>(sizeof error) ? error : 0;
  }
}

int reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

bool wait_readable(int fd, milliseconds limit) {
  const auto end = Clock::now() + limit;
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(end - Clock::now());
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::max<milliseconds::rep>(left.count(), 0)));
    if (n > 0) return true;
    if (n == 0 || errno != EINTR) return false;
  }
}

void set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) throw_errno(errno, "fcntl");
}

}  // namespace

std::optional<unsigned long long> process_start_time(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  // The command name (field 2) is in parentheses and may itself hold
  // spaces and ')': fields are counted from the last ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 1));
  std::string field;
  for (int index = 3; index <= 22; ++index) {
    if (!(rest >> field)) return std::nullopt;
  }
  unsigned long long ticks = 0;
  const auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), ticks);
  if (error != std::errc() || end != field.data() + field.size()) return std::nullopt;
  return ticks;
}

Termination terminate_process(pid_t pid, unsigned long long start_time, milliseconds grace) {
  if (pid <= 0) return Termination::Gone;
  // The pidfd is opened before the start time is checked: if the check then
  // matches, the pidfd names that very process, and signals sent through it
  // can never reach a process that reuses the pid later.
  UniqueFd pidfd(pidfd_open(pid));
  if (!pidfd.valid()) {
    if (errno == ESRCH) return Termination::Gone;
    if (errno == EINVAL) return Termination::Reused;  // a thread id, not a process
    throw_errno(errno, "pidfd_open");
  }
  const auto now_start = process_start_time(pid);
  if (!now_start) return Termination::Gone;
  if (*now_start != start_time) return Termination::Reused;

  if (pidfd_send_signal(pidfd.get(), SIGTERM) != 0) {
    if (errno == ESRCH) return Termination::Gone;
    if (errno == EPERM) return Termination::NotPermitted;
    throw_errno(errno, "pidfd_send_signal");
  }
  if (wait_readable(pidfd.get(), grace)) return Termination::Terminated;
  if (pidfd_send_signal(pidfd.get(), SIGKILL) != 0 && errno != ESRCH) {
    throw_errno(errno, "pidfd_send_signal");
  }
  return wait_readable(pidfd.get(), kKillWait) ? Termination::Killed : Termination::StillAlive;
}

struct ChildState {
  std::vector<std::string> argv;
  std::optional<std::vector<std::string>> env;

  mutable std::mutex mutex;
  std::condition_variable changed;
  bool settled = false;  // started, or failed to
  int spawn_errno = 0;
  pid_t pid = -1;
  unsigned long long start_time = 0;
  // Valid from the start until the reap. Signals go only through it, under
  // the mutex and before `exited`, so they cannot reach a reused pid.
  UniqueFd pidfd;
  bool exited = false;
  int wait_status = 0;
  bool released = false;
  ChildProcess::Output output;

  void append(bool is_err, const char *data, std::size_t size) {
    std::lock_guard lock(mutex);
    if (released) return;  // nobody will read it any more
    std::string &text = is_err ? output.err : output.out;
    bool &truncated = is_err ? output.err_truncated : output.out_truncated;
    const std::size_t room = ChildProcess::kOutputCap - text.size();
    if (size > room) truncated = true;
    text.append(data, std::min(size, room));
  }

  // SIGKILL/SIGTERM to the child and, while it is unreaped (so its pid,
  // which is also its group id, cannot be reused), to its group.
  void signal(int sig) {
    std::lock_guard lock(mutex);
    if (exited || !pidfd.valid()) return;
    pidfd_send_signal(pidfd.get(), sig);
    ::kill(-pid, sig);
  }
};

namespace {

struct Spawned {
  pid_t pid = -1;
  UniqueFd pidfd;
  UniqueFd out;
  UniqueFd err;
};

// Pointers into `strings`, null-terminated, as execve wants them.
std::vector<char *> c_strings(const std::vector<std::string> &strings) {
  std::vector<char *> pointers;
  pointers.reserve(strings.size() + 1);
  for (const auto &s : strings)
    pointers.push_back(const_cast<char *>(s.c_str()));
  pointers.push_back(nullptr);
  return pointers;
}

Spawned spawn(const std::vector<std::string> &argv,
              const std::optional<std::vector<std::string>> &env) {
  Pipe out = make_pipe();
  Pipe err = make_pipe();
  Pipe report = make_pipe();
  UniqueFd in = open_dev_null();
  std::vector<char *> args = c_strings(argv);
  std::vector<char *> envp = env ? c_strings(*env) : std::vector<char *>{};
  const ExecPlan plan{args.data(),     env ? envp.data() : environ, in.get(),   out.write.get(),
                      err.write.get(), report.write.get(),          ::getpid(), max_fd()};

  const pid_t pid = ::fork();
  if (pid < 0) throw_errno(errno, "fork");
  if (pid == 0) exec_child(plan);

  out.write.reset();
  err.write.reset();
  report.write.reset();
  if (int error = read_exec_report(report.read.get()); error != 0) {
    reap(pid);
    throw_errno(error, "cannot run " + argv.front());
  }
  // The child is ours and not yet reaped, so its pid cannot have been reused.
  UniqueFd pidfd(pidfd_open(pid));
  if (!pidfd.valid()) {
    const int error = errno;
    ::kill(pid, SIGKILL);
    reap(pid);
    throw_errno(error, "pidfd_open");
  }
  set_nonblocking(out.read.get());
  set_nonblocking(err.read.get());
  return Spawned{pid, std::move(pidfd), std::move(out.read), std::move(err.read)};
}

// Reads what is there. False at end of file (or on error): stop polling it.
// `budget` bounds the reading, against a writer that never pauses.
bool drain(int fd, bool is_err, ChildState &state, std::size_t &budget) {
  std::array<char, 65536> buffer{};
  while (budget > 0) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n > 0) {
      state.append(is_err, buffer.data(), static_cast<std::size_t>(n));
      budget -= std::min(budget, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
  return true;
}

// Copies the child's output until it exits. Pipes still open after the exit
// (a grandchild holds them) are read once more and then left: waiting for
// their end could take forever.
void pump(ChildState &state, const Spawned &child, int pidfd) {
  std::array<pollfd, 3> fds{
      {{child.out.get(), POLLIN, 0}, {child.err.get(), POLLIN, 0}, {pidfd, POLLIN, 0}}};
  for (;;) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (std::size_t i = 0; i < 2; ++i) {
      std::size_t budget = ChildProcess::kOutputCap;
      // A negative fd is skipped by poll: that stream has ended.
      if (fds[i].revents != 0 && !drain(fds[i].fd, i == 1, state, budget)) fds[i].fd = -1;
    }
    if (fds[2].revents != 0) break;
  }
  for (std::size_t i = 0; i < 2; ++i) {
    std::size_t budget = 2 * ChildProcess::kOutputCap;
    if (fds[i].fd >= 0) drain(fds[i].fd, i == 1, state, budget);
  }
}

// The keeper thread: forks the child, copies its output, reaps it.
void keep(const std::shared_ptr<ChildState> &state) {
  // Named for operators (top -H, gdb) and for tests that count keepers.
  ::pthread_setname_np(::pthread_self(), "blade-keeper");
  // Blocked here, so the child starts with every signal blocked until it has
  // reset their dispositions, and no process signal is delivered to this
  // thread.
  sigset_t all;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, nullptr);

  Spawned child;
  int error = 0;
  try {
    child = spawn(state->argv, state->env);
  } catch (const std::system_error &e) {
    error = e.code().value() != 0 ? e.code().value() : EIO;
  } catch (const std::exception &) {
    error = ENOMEM;  // what else fails while spawning: allocation
  }
  int pidfd = -1;
  {
    std::lock_guard lock(state->mutex);
    state->spawn_errno = error;
    state->settled = true;
    if (error == 0) {
      state->pid = child.pid;
      state->start_time = process_start_time(child.pid).value_or(0);
      // Owned by the state from now on, for signals; it stays open until the
      // reap below, which only this thread does, so pump may poll it.
      pidfd = child.pidfd.get();
      state->pidfd = std::move(child.pidfd);
    }
  }
  state->changed.notify_all();
  if (error != 0) return;

  pump(*state, child, pidfd);

  std::lock_guard lock(state->mutex);
  state->wait_status = reap(child.pid);
  state->exited = true;
  state->pidfd.reset();
  state->changed.notify_all();
}

}  // namespace

ChildProcess::ChildProcess(std::vector<std::string> argv,
                           std::optional<std::vector<std::string>> env)
    : state_(std::make_shared<ChildState>()) {
  if (argv.empty() || argv.front().empty()) throw_errno(EINVAL, "empty argv");
  state_->argv = std::move(argv);
  state_->env = std::move(env);
  keeper_ = std::thread(keep, state_);
  std::unique_lock lock(state_->mutex);
  state_->changed.wait(lock, [&] { return state_->settled; });
  if (state_->spawn_errno != 0) {
    const int error = state_->spawn_errno;
    lock.unlock();
    keeper_.join();
    throw_errno(error, "cannot run " + state_->argv.front());
  }
}

ChildProcess::~ChildProcess() {
  if (!keeper_.joinable()) return;
  try {
    kill_and_reap();
    if (keeper_.joinable()) keeper_.join();
  } catch (const std::exception &e) {
    log::error("child process cleanup failed", {{"error", e.what()}});
  }
}

pid_t ChildProcess::pid() const {
  std::lock_guard lock(state_->mutex);
  return state_->pid;
}

unsigned long long ChildProcess::start_time() const {
  std::lock_guard lock(state_->mutex);
  return state_->start_time;
}

WaitEnd ChildProcess::wait(Clock::time_point deadline, const std::atomic<bool> *cancel) {
  std::unique_lock lock(state_->mutex);
  while (!state_->exited) {
    if (cancel != nullptr && cancel->load()) return WaitEnd::Cancelled;
    const auto now = Clock::now();
    if (now >= deadline) return WaitEnd::DeadlineExpired;
    state_->changed.wait_until(
        lock, cancel != nullptr ? std::min(deadline, now + kCancelPoll) : deadline);
  }
  return WaitEnd::Exited;
}

std::optional<int> ChildProcess::wait_status() const {
  std::lock_guard lock(state_->mutex);
  if (!state_->exited) return std::nullopt;
  return state_->wait_status;
}

ChildProcess::Output ChildProcess::output() const {
  std::lock_guard lock(state_->mutex);
  return state_->output;
}

void ChildProcess::kill_and_reap() {
  state_->signal(SIGKILL);
  if (wait(Clock::now() + kReapLimit) == WaitEnd::Exited) return;
  // Stuck in the kernel: its keeper reaps it whenever it does exit.
  log::error("child survived SIGKILL; leaving it to its keeper",
             {{"pid", std::to_string(pid())}, {"program", state_->argv.front()}});
  release();
}

void ChildProcess::release() {
  {
    std::lock_guard lock(state_->mutex);
    state_->released = true;
    state_->output = {};
  }
  if (keeper_.joinable()) keeper_.detach();
}

}  // namespace blade::detail
