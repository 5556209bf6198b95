// Network namespaces and veth pairs the network tests make for themselves,
// so no test touches the host's own interfaces, qdiscs or firewall: each
// fault is aimed at an interface inside a namespace the test owns, and the
// daemon under test runs there too (a bladed started while the calling
// thread is in a namespace is born in it). Set up with `ip` (iproute2): the
// test's scaffolding, not the code under test.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace blade::test::net {

// Runs argv (no shell); its exit code, or -1 when it could not run.
inline int run(const std::vector<std::string> &argv, bool quiet = true) {
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (quiet) {
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    std::vector<char *> args;
    for (const auto &a : argv)
      args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline void must(const std::vector<std::string> &argv) {
  if (run(argv, false) != 0) {
    std::string cmd;
    for (const auto &a : argv)
      cmd += a + " ";
    throw std::runtime_error("test setup failed: " + cmd);
  }
}

// A named namespace (`ip netns add`), with its loopback up; deleted at
// destruction, which also deletes every interface in it.
class NetNs {
 public:
  explicit NetNs(const std::string &prefix) {
    sweep(prefix);
    static std::atomic<int> counter{0};
    name_ = prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    must({"ip", "netns", "add", name_});
    must({"ip", "-n", name_, "link", "set", "lo", "up"});
  }
  ~NetNs() { run({"ip", "netns", "del", name_}); }
  NetNs(const NetNs &) = delete;
  NetNs &operator=(const NetNs &) = delete;

  const std::string &name() const { return name_; }
  std::string path() const { return "/run/netns/" + name_; }
  // argv run inside the namespace.
  int exec(std::vector<std::string> argv, bool quiet = true) const {
    argv.insert(argv.begin(), {"ip", "netns", "exec", name_});
    return run(argv, quiet);
  }

 private:
  // Deletes the namespaces of this prefix that a killed test run left
  // behind (named <prefix>-<pid>-<n>, their pid gone): a SIGKILLed test
  // runs no destructor, and nothing else would ever remove them.
  static void sweep(const std::string &prefix) {
    std::error_code ec;
    for (const auto &e : std::filesystem::directory_iterator("/run/netns", ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind(prefix + "-", 0) != 0) continue;
      const std::string rest = name.substr(prefix.size() + 1);
      const long pid = std::strtol(rest.c_str(), nullptr, 10);
      if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
        run({"ip", "netns", "del", name});
    }
  }

  std::string name_;
};

// The calling thread inside `ns` until destruction (setns back). Sockets
// made meanwhile belong to `ns`, and children started meanwhile are born
// in it (a BladedProcess, a server).
class EnterNetNs {
 public:
  explicit EnterNetNs(const NetNs &ns) {
    home_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    const int target = ::open(ns.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (home_ < 0 || target < 0 || ::setns(target, CLONE_NEWNET) != 0) {
      if (target >= 0) ::close(target);
      throw std::runtime_error("cannot enter network namespace " + ns.name());
    }
    ::close(target);
  }
  ~EnterNetNs() {
    ::setns(home_, CLONE_NEWNET);
    ::close(home_);
  }
  EnterNetNs(const EnterNetNs &) = delete;
  EnterNetNs &operator=(const EnterNetNs &) = delete;

 private:
  int home_ = -1;
};

// A veth pair between two namespaces: `a_if` in `a` with address `a_ip`/24,
// `b_if` in `b` with `b_ip`/24, both up. Gone with the namespaces.
struct VethPair {
  std::string a_if, b_if, a_ip, b_ip;
  VethPair(const NetNs &a, const NetNs &b, std::string a_ip_, std::string b_ip_,
           std::string a_name = "veth-a", std::string b_name = "veth-b")
      : a_if(std::move(a_name)), b_if(std::move(b_name)), a_ip(std::move(a_ip_)),
        b_ip(std::move(b_ip_)) {
    // Made in `a` (a name of its own there), its peer moved into `b`.
    must({"ip", "-n", a.name(), "link", "add", a_if, "type", "veth", "peer", "name", b_if,
          "netns", b.name()});
    must({"ip", "-n", a.name(), "addr", "add", a_ip + "/24", "dev", a_if});
    must({"ip", "-n", b.name(), "addr", "add", b_ip + "/24", "dev", b_if});
    must({"ip", "-n", a.name(), "link", "set", a_if, "up"});
    must({"ip", "-n", b.name(), "link", "set", b_if, "up"});
  }
};

}  // namespace blade::test::net
