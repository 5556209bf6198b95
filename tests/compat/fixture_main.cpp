// The processes the compat rows aim at, as one small program (started with
// fork/exec by the test, never through a shell):
//   compat_fixture listen <port-file>  listens on a free TCP port of 127.0.0.1,
//                                      writes the port to <port-file>, waits.
//   compat_fixture mmap <log-file>     maps and unmaps a page every 20 ms and
//                                      logs how long each mmap took and how it
//                                      ended ("<ms> ok" or "<ms> err <errno>"),
//                                      so a strace fault shows in the log.
//   compat_fixture oom-probe -         exits 0 when this machine lets a
//                                      process lower its oom_score_adj (some
//                                      sandboxes refuse negative values).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

namespace {

int listen_on_free_port(const std::string &port_file) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
      ::listen(fd, 4) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) != 0)
    return 1;
  // Written whole under another name, then renamed: the test never reads half a port.
  const std::string tmp = port_file + ".tmp";
  {
    std::ofstream out(tmp);
    out << ntohs(addr.sin_port) << "\n";
  }
  if (std::rename(tmp.c_str(), port_file.c_str()) != 0) return 1;
  for (;;)
    ::pause();
}

int map_pages_forever(const std::string &log_file) {
  std::FILE *log = std::fopen(log_file.c_str(), "a");
  if (!log) return 1;
  for (;;) {
    const auto start = std::chrono::steady_clock::now();
    void *page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    const int err = errno;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    if (page == MAP_FAILED) {
      std::fprintf(log, "%lld err %d\n", static_cast<long long>(ms), err);
    } else {
      std::fprintf(log, "%lld ok\n", static_cast<long long>(ms));
      ::munmap(page, 4096);
    }
    std::fflush(log);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int lowers_oom_score() {
  {
    std::ofstream out("/proc/self/oom_score_adj");
    out << "-1000" << std::flush;
  }
  std::ifstream in("/proc/self/oom_score_adj");
  int adj = 0;
  return in >> adj && adj == -1000 ? 0 : 1;
}

}  // namespace

int main(int argc, char **argv) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
  if (argc != 3) return 2;
  const std::string mode = argv[1];
  if (mode == "listen") return listen_on_free_port(argv[2]);
  if (mode == "mmap") return map_pages_forever(argv[2]);
  if (mode == "oom-probe") return lowers_oom_score();
  return 2;
}
