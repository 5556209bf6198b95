// A child process started with fork/exec (never a shell) that is killed and
// reaped when the object goes, so a failing test leaves no daemon behind.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace blade::test {

class ChildProcess {
 public:
  // `env` entries ("K=V") are added to the current environment.
  // stdout/stderr go to `log_file` if given.
  ChildProcess(const std::vector<std::string> &argv, const std::vector<std::string> &env = {},
               const std::string &log_file = {}) {
    std::vector<char *> args;
    for (const auto &a : argv)
      args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // die with the test runner
      for (const auto &e : env)
        ::putenv(const_cast<char *>(e.c_str()));
      if (!log_file.empty()) {
        int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
          ::dup2(fd, 1);
          ::dup2(fd, 2);
          ::close(fd);
        }
      }
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~ChildProcess() {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
  }
  ChildProcess(const ChildProcess &) = delete;
  ChildProcess &operator=(const ChildProcess &) = delete;

  pid_t pid() const { return pid_; }

  // Waits up to `timeout` for the child to exit; its wait status, or nullopt.
  std::optional<int> wait_for(std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (!status_) {
      int st = 0;
      pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        status_ = st;
        break;
      }
      if (std::chrono::steady_clock::now() >= end) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return status_;
  }

  // Exit code if the child exited normally, -signal if killed, nullopt if running.
  std::optional<int> exit_code(std::chrono::milliseconds timeout) {
    auto st = wait_for(timeout);
    if (!st) return std::nullopt;
    if (WIFEXITED(*st)) return WEXITSTATUS(*st);
    return -WTERMSIG(*st);
  }

  void signal(int sig) const { ::kill(pid_, sig); }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

}  // namespace blade::test
