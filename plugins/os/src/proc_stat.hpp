// Per-core cpu accounting from /proc/stat and the kernel's cpu-list syntax
// ("0-1,3"), shared by the cpu faults and their tests' expectations.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

namespace blade::os {

// Cumulative ticks (USER_HZ) of one core since boot.
struct CpuTicks {
  std::uint64_t busy = 0;   // everything but idle and iowait
  std::uint64_t total = 0;  // busy + idle + iowait
};

// Every core's line of /proc/stat ("cpuN ..."), keyed by N.
std::map<int, CpuTicks> read_cpu_ticks();
std::optional<CpuTicks> read_core_ticks(int core);
// The aggregate "cpu" line: every online core together (the host's average).
std::optional<CpuTicks> read_host_ticks();

// Busy share between two readings of one core, 0..100; 0 when no tick passed.
double utilisation_percent(const CpuTicks &before, const CpuTicks &after);

// "0-1,3" -> {0, 1, 3}, sorted and unique. Throws std::invalid_argument with
// a description of what is wrong (without a flag name).
std::vector<int> parse_cpu_list(std::string_view text);

// Cores that are online and that this process may run on (its affinity
// mask, which a container's cpuset narrows), sorted.
std::vector<int> usable_cpus();

}  // namespace blade::os
