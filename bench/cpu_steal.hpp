// Time the hypervisor gave this machine's CPUs to someone else (steal in
// /proc/stat): a benchmark on a shared VM reports it beside its figures,
// since every rate it measured was taken with that much less CPU.
#pragma once

#include <fstream>
#include <string>

namespace blade::bench {

// The all-CPU line of /proc/stat, in clock ticks.
struct CpuTicks {
  unsigned long long total = 0;  // every state, idle included
  unsigned long long steal = 0;
};

inline CpuTicks cpu_ticks_now() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  in >> cpu;  // "cpu"
  CpuTicks t;
  // user nice system idle iowait irq softirq steal (guest times are
  // already inside user and nice).
  for (int i = 0; i < 8; ++i) {
    unsigned long long v = 0;
    in >> v;
    t.total += v;
    if (i == 7) t.steal = v;
  }
  return t;
}

// Steal between two readings as a percentage of all CPU time between them.
inline double steal_percent(const CpuTicks &from, const CpuTicks &to) {
  const auto total = to.total - from.total;
  return total ? 100.0 * static_cast<double>(to.steal - from.steal) / static_cast<double>(total)
               : 0.0;
}

}  // namespace blade::bench
