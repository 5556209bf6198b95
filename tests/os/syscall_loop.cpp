// The fixture of the strace tests: a process that makes one syscall in a
// loop and logs each call as "<seq> <latency_us> <return> <errno>" lines to
// a file, so a test measures what a tracer did to each call.
//
// usage: syscall_loop <log-file> <getppid|openat> <pause-ms> [<after-ms> [fork]]
// With after-ms the calls are made by a second thread started that long
// after the process (a thread a tracer attached earlier has to follow), or
// with `fork` by a child process forked then (dying with its parent).
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

long long now_us() {
  timespec t{};
  ::clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

// Raw syscalls: the C library may cache or reroute (openat for open).
long call(const std::string &name) {
  if (name == "getppid") return ::syscall(SYS_getppid);
  const long fd = ::syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) ::close(static_cast<int>(fd));
  return fd;
}

[[noreturn]] void loop(int log, const std::string &name, long pause_ms) {
  for (long seq = 1;; ++seq) {
    const long long start = now_us();
    errno = 0;
    const long ret = call(name);
    const int err = ret < 0 ? errno : 0;
    const long long latency = now_us() - start;
    char line[128];
    const int n = std::snprintf(line, sizeof line, "%ld %lld %ld %d\n", seq, latency, ret, err);
    if (::write(log, line, static_cast<std::size_t>(n)) != n) std::_Exit(1);
    timespec pause{pause_ms / 1000, (pause_ms % 1000) * 1000000L};
    ::nanosleep(&pause, nullptr);
  }
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 4 || argc > 6) {
    std::fprintf(stderr, "usage: %s <log-file> <getppid|openat> <pause-ms> [<after-ms> [fork]]\n",
                 argv[0]);
    return 2;
  }
  const std::string name = argv[2];
  if (name != "getppid" && name != "openat") return 2;
  const int log = ::open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) return 1;
  const long pause_ms = std::atol(argv[3]);
  if (argc == 4) loop(log, name, pause_ms);
  const long after_ms = std::atol(argv[4]);
  timespec wait{after_ms / 1000, (after_ms % 1000) * 1000000L};
  ::nanosleep(&wait, nullptr);
  if (argc == 6 && std::string(argv[5]) == "fork") {
    const pid_t child = ::fork();
    if (child == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      loop(log, name, pause_ms);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    return 1;
  }
  std::thread(loop, log, name, pause_ms).join();
}
