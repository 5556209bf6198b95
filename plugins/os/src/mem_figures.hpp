// The memory figures a mem load is sized by: /proc/meminfo or, with the
// cgroup meter, the process's memory cgroup (its limit and usage, for a load
// inside a container); ChaosBlade's idea of "available" per mode, and
// Blade's safety floor.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace blade::os {

constexpr std::uint64_t kMiB = 1024 * 1024;

// /proc/meminfo's figures, or a cgroup's in their place, in bytes.
struct MemInfo {
  std::uint64_t total = 0;      // MemTotal; a cgroup: its limit (at most MemTotal)
  std::uint64_t free = 0;       // MemFree; a cgroup: total - usage
  std::uint64_t buffers = 0;    // Buffers; a cgroup: 0 (counted in its cache)
  std::uint64_t cached = 0;     // Cached; a cgroup: its page cache
  std::uint64_t available = 0;  // MemAvailable: the kernel's own estimate (a cgroup: below)
  std::uint64_t floor = 0;      // of available, never taken (safety_floor)
  // Set when the figures are a cgroup's.
  struct Cgroup {
    std::string dir;
    std::optional<std::uint64_t> limit;  // none: unlimited
    std::uint64_t usage = 0;
  };
  std::optional<Cgroup> cgroup;
};

// Throws sdk::FailedPrecondition when MemTotal is missing.
MemInfo read_meminfo();

// A memory cgroup's files.
struct CgroupMemory {
  bool v2 = false;
  std::string dir;
};

// The calling process's memory cgroup (v1 when its memory controller is on
// a v1 hierarchy, else v2), every path under `root` ("" on a real system).
// Throws sdk::FailedPrecondition saying what is missing.
CgroupMemory find_cgroup_memory(const std::string &root = "");

// The cgroup's figures, bounded by the host's (`host`, from read_meminfo):
// total is its limit (v1 memory.limit_in_bytes, a huge value meaning none;
// v2 memory.max, "max" meaning none) or MemTotal, at most MemTotal; used is
// its usage (memory.usage_in_bytes / memory.current); cached its page cache
// (memory.stat total_cache / file). Available is what the cgroup has left
// plus its cache, but never more than the host can give above its own
// floor. Throws sdk::FailedPrecondition when the usage is unreadable.
MemInfo read_cgroup_meminfo(const CgroupMemory &cg, const MemInfo &host);

// Where a load's figures come from, read again each second: the host's, or
// its cgroup's when set.
struct MemMeter {
  std::optional<CgroupMemory> cgroup;
  MemInfo read() const;
};

// What the user asked, read as ChaosBlade reads it.
struct MemTarget {
  bool cache = false;                 // mode=cache
  bool include_buffer_cache = false;  // ram mode: buffers and cache count as used
  int percent = 0;                    // target used share of MemTotal; 0 when reserve rules
  std::uint64_t reserve = 0;          // bytes to leave available (when percent is 0)

  // ChaosBlade's available: MemFree, plus Buffers and Cached in ram mode
  // unless include-buffer-cache (then they count as used, as in cache mode).
  std::uint64_t counted_available(const MemInfo &m) const;
  // What stays untaken of counted_available: MemTotal*(100-percent)% or reserve.
  std::uint64_t reserved(const MemInfo &m) const;
  // Bytes ChaosBlade would take now: counted_available - reserved.
  std::uint64_t wanted(const MemInfo &m) const;
};

// Blade never takes the last of MemAvailable: this much stays, so the host
// (and the daemon that can undo the load) survive a 100% ask; in a cgroup,
// so its own processes are not OOM-killed at its limit.
std::uint64_t safety_floor(const MemInfo &m);
// wanted(), cut to what the floor allows.
std::uint64_t allowed(const MemTarget &t, const MemInfo &m);

// The figures behind a sizing, for the result and the dry run.
nlohmann::json describe(const MemTarget &t, const MemInfo &m);

}  // namespace blade::os
