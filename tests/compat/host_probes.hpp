// What the compat rows read of the host, independently of the plugins: the
// cores' busy share (/proc/stat), and the cpu time, memory, io and open files
// of bladed with every process under it (a fault works in the daemon's
// threads or in children it forks).
#pragma once

#include <sched.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../disk/disk_test_support.hpp"
#include "../support/process_state.hpp"

namespace blade::test::compat {

namespace fs = std::filesystem;

// Cores this process may run on (its affinity mask).
inline std::vector<int> usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cores;
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return cores;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cores.push_back(c);
  return cores;
}

// Busy and total ticks of each core (key N of "cpuN") and of the host (key -1).
using CoreTicks = std::map<int, std::pair<std::uint64_t, std::uint64_t>>;

inline CoreTicks core_ticks() {
  CoreTicks out;
  std::ifstream in("/proc/stat");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("cpu", 0) != 0) break;
    std::istringstream f(line);
    std::string name;
    f >> name;
    std::uint64_t v[8] = {}, busy = 0, total = 0;
    for (auto &x : v)
      f >> x;
    for (int i = 0; i < 8; ++i) {
      total += v[i];
      if (i != 3 && i != 4) busy += v[i];  // all but idle and iowait
    }
    out[name == "cpu" ? -1 : std::stoi(name.substr(3))] = {busy, total};
  }
  return out;
}

inline double busy_percent(const CoreTicks &a, const CoreTicks &b, int core) {
  const auto &[busy0, total0] = a.at(core);
  const auto &[busy1, total1] = b.at(core);
  return total1 == total0 ? 0.0 : 100.0 * double(busy1 - busy0) / double(total1 - total0);
}

// `root` and every process under it.
inline std::vector<pid_t> process_tree(pid_t root) {
  std::map<pid_t, std::vector<pid_t>> children;
  for (const auto &e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string line;
    std::getline(in, line);
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream f(line.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    f >> state >> ppid;
    children[ppid].push_back(std::stoi(name));
  }
  std::vector<pid_t> tree = {root};
  for (std::size_t i = 0; i < tree.size(); ++i)
    for (pid_t child : children[tree[i]])
      tree.push_back(child);
  return tree;
}

// Cores' worth of cpu the tree used over `window` (1.0 = one core all along).
inline double tree_cores_used(pid_t root, std::chrono::milliseconds window) {
  auto ticks = [&] {
    unsigned long long sum = 0;
    for (pid_t p : process_tree(root))
      sum += cpu_ticks(p);
    return sum;
  };
  const auto t0 = ticks();
  std::this_thread::sleep_for(window);
  const auto t1 = ticks();
  return double(t1 - t0) / double(::sysconf(_SC_CLK_TCK)) / (double(window.count()) / 1000.0);
}

// Resident memory of the tree in MiB.
inline long long tree_rss_mib(pid_t root) {
  long long kib = 0;
  for (pid_t p : process_tree(root))
    kib += std::max(0LL, rss_kib(p));
  return kib / 1024;
}

// Bytes the tree's read and write calls moved so far.
inline disk::ProcessIo tree_io(pid_t root) {
  disk::ProcessIo sum;
  for (pid_t p : process_tree(root)) {
    const auto io = disk::process_io(p);
    sum.rchar += io.rchar;
    sum.wchar += io.wchar;
  }
  return sum;
}

// Files under `dir` that a process of the tree holds open.
inline std::set<std::string> tree_open_files_under(pid_t root, const fs::path &dir) {
  std::set<std::string> out;
  for (pid_t p : process_tree(root)) {
    std::error_code ec;
    for (const auto &fd : fs::directory_iterator("/proc/" + std::to_string(p) + "/fd", ec)) {
      const auto target = fs::read_symlink(fd.path(), ec);
      if (!ec && target.string().rfind(dir.string() + "/", 0) == 0) out.insert(target.string());
    }
  }
  return out;
}

// Processes of the tree whose oom_score_adj is below 0 (kept from the OOM killer).
inline int tree_oom_protected(pid_t root) {
  int n = 0;
  for (pid_t p : process_tree(root)) {
    std::ifstream in("/proc/" + std::to_string(p) + "/oom_score_adj");
    int adj = 0;
    if (in >> adj && adj < 0) ++n;
  }
  return n;
}

// How many processes run as user `uid` now whose command line holds `text`.
inline int processes_of_user(uid_t uid, const std::string &text) {
  int n = 0;
  for (const auto &e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "status");
    std::string key;
    uid_t real = static_cast<uid_t>(-1);
    while (in >> key) {
      if (key == "Uid:") {
        in >> real;
        break;
      }
      std::getline(in, key);
    }
    if (real != uid) continue;
    std::ifstream cmd(e.path() / "cmdline");
    const std::string cmdline((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
    if (cmdline.find(text) != std::string::npos) ++n;
  }
  return n;
}

// /dev/shm entries whose name holds `uid` (a mem load's cache file) and their MiB.
inline long long shm_mib_of(const std::string &uid) {
  long long bytes = 0;
  std::error_code ec;
  for (const auto &e : fs::directory_iterator("/dev/shm", ec))
    if (e.path().filename().string().find(uid) != std::string::npos)
      bytes += static_cast<long long>(fs::file_size(e.path(), ec));
  return bytes / (1024 * 1024);
}

}  // namespace blade::test::compat
