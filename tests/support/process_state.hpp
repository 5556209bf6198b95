// What tests read of a process in /proc.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "eventually.hpp"

namespace blade::test {

// Its state letter from /proc/<pid>/stat: 'S' sleeping, 'R' running, 'T'
// stopped ...; 0 when the process is gone.
inline char process_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  // The command name may hold spaces and ')': the state follows the last ')'.
  const auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() ? 0 : line[close + 2];
}

// The cpu time the process has used, user and system, in clock ticks.
inline unsigned long long cpu_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  const auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(line.substr(close + 2));
  std::string skip;
  for (int i = 0; i < 11; ++i)  // state .. cmajflt: fields 3 to 13
    fields >> skip;
  unsigned long long utime = 0, stime = 0;
  fields >> utime >> stime;
  return utime + stime;
}

// A size field of /proc/<pid>/status ("VmRSS:", "RssFile:" ...) in KiB; -1
// when the process is gone.
inline long long status_kib(pid_t pid, const std::string &field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::stoll(line.substr(field.size()));
  return -1;
}

// Its resident memory (VmRSS) in KiB; -1 when it is gone.
inline long long rss_kib(pid_t pid) { return status_kib(pid, "VmRSS:"); }

// How many threads the process has now.
inline std::size_t thread_count(pid_t pid) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto &e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task"))
    ++n;
  return n;
}

// Who ptraces the process: the first non-zero TracerPid of its threads'
// /proc/<pid>/task/<tid>/status, 0 when none is traced (or it is gone).
inline pid_t tracer_pid(pid_t pid) {
  std::error_code ec;
  for (const auto &task : std::filesystem::directory_iterator(
           "/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("TracerPid:", 0) != 0) continue;
      if (const int tracer = std::stoi(line.substr(10))) return tracer;
      break;
    }
  }
  return 0;
}

// The thread count of a process once it has settled (a daemon's pools
// start lazily): the same over two looks 100 ms apart, or the last after 5 s.
inline std::size_t settled_thread_count(pid_t pid) {
  std::size_t last = thread_count(pid);
  eventually(
      [&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        const std::size_t now = thread_count(pid);
        const bool same = now == last;
        last = now;
        return same;
      },
      std::chrono::seconds(5));
  return last;
}

}  // namespace blade::test
