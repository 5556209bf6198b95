// A container without a runtime, for the helper's tests: a child process in
// fresh mount, pid, net, uts and ipc namespaces (as runc makes them), with
// its own /proc and a tmpfs on /tmp holding a marker file that exists only
// there, and cgroup v1 dirs of its own (cpu, cpuacct, memory) that the test
// makes and removes. Everything goes with the object: the child is killed
// and reaped, the cgroups removed once empty.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../../../plugins/common/proc_reader.hpp"

namespace blade::test::cri {

// The cgroup v1 hierarchies the fake container gets a dir of its own in.
inline const std::vector<std::string> kHierarchies = {"cpu", "cpuacct", "memory"};

// This test process's cgroup dir in hierarchy `h` (one fake container at a
// time).
inline std::string test_cgroup_dir(const std::string &h) {
  return "/sys/fs/cgroup/" + h + "/blade-test-" + std::to_string(::getpid());
}

inline std::string read_all(const std::string &path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

inline std::vector<pid_t> pids_in(const std::string &procs_file) {
  std::vector<pid_t> out;
  std::istringstream s(read_all(procs_file));
  for (long p; s >> p;)
    out.push_back(static_cast<pid_t>(p));
  return out;
}

class FakeContainer {
 public:
  static constexpr const char *kHostname = "blade-fake-ctr";

  FakeContainer() {
    marker_ = "/tmp/blade-cri-marker-" + std::to_string(::getpid());
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    const std::string marker = marker_;
    // clone with fork semantics (no stack given): the child is pid 1 of its
    // own pid namespace. It runs only syscalls before it pauses.
    const long pid = ::syscall(SYS_clone, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS |
                                              CLONE_NEWIPC | SIGCHLD,
                               nullptr, nullptr, nullptr, 0);
    if (pid < 0) throw std::runtime_error("clone into new namespaces failed (root needed)");
    if (pid == 0) {
      ::close(ready[0]);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      bool ok = ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
                ::mount("tmpfs", "/tmp", "tmpfs", 0, "size=16m,mode=1777") == 0 &&
                ::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) == 0 &&
                ::sethostname(kHostname, sizeof("blade-fake-ctr") - 1) == 0;
      const int fd = ok ? ::open(marker.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644) : -1;
      ok = fd >= 0 && ::write(fd, "inside\n", 7) == 7;
      if (fd >= 0) ::close(fd);
      const char byte = ok ? '1' : '0';
      if (::write(ready[1], &byte, 1) != 1) ::_exit(1);
      ::close(ready[1]);
      for (;;)
        ::pause();
    }
    pid_ = static_cast<pid_t>(pid);
    ::close(ready[1]);
    char byte = 0;
    const bool up = ::read(ready[0], &byte, 1) == 1 && byte == '1';
    ::close(ready[0]);
    if (!up) {
      kill_child();
      throw std::runtime_error("the fake container could not mount its /tmp and /proc");
    }
    start_ = plugins::proc::start_time_of(pid_).value_or(0);
    for (const auto &h : kHierarchies) {
      const std::string dir = cgroup_dir(h);
      std::filesystem::create_directory(dir);
      made_.push_back(dir);
      std::ofstream(dir + "/cgroup.procs") << pid_;
    }
  }
  ~FakeContainer() {
    kill_child();
    for (const auto &dir : made_)
      remove_cgroup(dir);
  }
  FakeContainer(const FakeContainer &) = delete;
  FakeContainer &operator=(const FakeContainer &) = delete;

  pid_t pid() const { return pid_; }
  std::uint64_t start() const { return start_; }
  // The same path in the container and on the host: only the container's
  // /tmp (its tmpfs) holds it.
  const std::string &marker() const { return marker_; }
  // A path in the container's mount namespace, seen from the host.
  std::string inside(const std::string &path) const {
    return "/proc/" + std::to_string(pid_) + "/root" + path;
  }
  std::string cgroup_dir(const std::string &hierarchy) const { return test_cgroup_dir(hierarchy); }
  // A cpu limit of `cores` (cfs quota over a 100 ms period), as a runtime
  // sets from the container's resources.
  void limit_cpu(double cores) const {
    std::ofstream(cgroup_dir("cpu") + "/cpu.cfs_period_us") << 100000;
    std::ofstream(cgroup_dir("cpu") + "/cpu.cfs_quota_us") << static_cast<long>(cores * 100000);
  }
  std::vector<pid_t> cgroup_pids(const std::string &hierarchy) const {
    return pids_in(cgroup_dir(hierarchy) + "/cgroup.procs");
  }

 private:
  void kill_child() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
  // rmdir fails while a process is inside (a helper being reaped): retried
  // for a while; the tests check afterwards that the dirs are gone.
  static void remove_cgroup(const std::string &dir) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (::rmdir(dir.c_str()) != 0 && errno == EBUSY && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  pid_t pid_ = -1;
  std::uint64_t start_ = 0;
  std::string marker_;
  std::vector<std::string> made_;
};

}  // namespace blade::test::cri
