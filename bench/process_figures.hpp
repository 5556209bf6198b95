// What benchmarks read of a process under measurement, in the units they
// print: one definition, so every benchmark's figures mean the same.
#pragma once

#include <sys/types.h>
#include <unistd.h>

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

}  // namespace blade::bench
