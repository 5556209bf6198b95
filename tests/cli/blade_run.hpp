// Runs the real `blade` binary (fork/exec, never a shell) and collects its
// exit code, stdout and stderr. Its environment is built from scratch, so
// nothing of the test runner's (a token, a config file) leaks in.
#pragma once

#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../support/file_text.hpp"
#include "../support/temp_dir.hpp"

namespace blade::test {

inline const std::string kBlade = BLADE_CLI_PATH;

struct BladeRun {
  int code = -1;  // exit code, or -signal
  std::string out;
  std::string err;
};

// The lines of `text` (without a trailing empty one).
inline std::vector<std::string> lines_of(const std::string &text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

class BladeRunner {
 public:
  // `home` becomes HOME, so ~/.config/blade/config.yaml is the test's own.
  explicit BladeRunner(std::vector<std::string> env = {}) : env_(std::move(env)) {}

  const std::filesystem::path &home() const { return home_.path(); }

  // With `terminal`, stdout is a pseudo-terminal (isatty(1) holds), as for a
  // person at a shell; with `cwd`, blade runs in that directory.
  BladeRun run(const std::vector<std::string> &args, const std::vector<std::string> &extra_env = {},
               bool terminal = false, const std::filesystem::path &cwd = {}) const {
    std::vector<std::string> argv = {kBlade};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> env = {"PATH=/usr/bin:/bin", "HOME=" + home_.path().string()};
    env.insert(env.end(), env_.begin(), env_.end());
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    std::vector<char *> cargv, cenv;
    for (auto &a : argv)
      cargv.push_back(a.data());
    cargv.push_back(nullptr);
    for (auto &e : env)
      cenv.push_back(e.data());
    cenv.push_back(nullptr);

    TempDir io("blade-run");
    const auto out_file = (io / "out").string(), err_file = (io / "err").string();
    int master = -1;
    pid_t pid = terminal ? ::forkpty(&master, nullptr, nullptr, nullptr) : ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
      int err_fd = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(err_fd, 2);
      if (!terminal) {
        int out_fd = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(out_fd, 1);
      }
      ::execve(cargv[0], cargv.data(), cenv.data());
      ::_exit(127);
    }
    BladeRun r;
    if (terminal) {
      char buf[4096];
      for (;;) {
        ssize_t n = ::read(master, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // EIO once the child has closed the terminal
        r.out.append(buf, static_cast<std::size_t>(n));
      }
      ::close(master);
      // The terminal turns \n into \r\n.
      std::string plain;
      for (char c : r.out)
        if (c != '\r') plain += c;
      r.out = plain;
    }
    // A blade that hangs fails its test here, not at the runner's timeout.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    int status = 0;
    for (;;) {
      const pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid || (w < 0 && errno != EINTR)) break;
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    if (!terminal) r.out = read_text(out_file);
    r.err = read_text(err_file);
    return r;
  }

 private:
  TempDir home_{"blade-home"};
  std::vector<std::string> env_;
};

}  // namespace blade::test
