// What benchmarks read of a process under measurement, in the units they
// print: one definition, so every benchmark's figures mean the same.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "../tests/support/process_state.hpp"

namespace blade::bench {

// VmRSS in MiB (negative when the process is gone).
inline double rss_mb(pid_t pid) {
  return static_cast<double>(test::rss_kib(pid)) / 1024.0;
}

// utime + stime, all its threads, in seconds.
inline double cpu_seconds(pid_t pid) {
  return static_cast<double>(test::cpu_ticks(pid)) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Voluntary and involuntary context switches of its live threads, summed
// (a thread that has exited takes its count with it: pools keep theirs).
inline long long context_switches(pid_t pid) {
  long long sum = 0;
  std::error_code ec;
  for (const auto &task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0 ||
          line.rfind("nonvoluntary_ctxt_switches:", 0) == 0)
        sum += std::stoll(line.substr(line.find(':') + 1));
    }
  }
  return sum;
}

}  // namespace blade::bench
