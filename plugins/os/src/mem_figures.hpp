// The memory figures a mem load is sized by: /proc/meminfo, ChaosBlade's
// idea of "available" per mode, and Blade's safety floor.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace blade::os {

constexpr std::uint64_t kMiB = 1024 * 1024;

// /proc/meminfo, in bytes.
struct MemInfo {
  std::uint64_t total = 0;      // MemTotal
  std::uint64_t free = 0;       // MemFree
  std::uint64_t buffers = 0;    // Buffers
  std::uint64_t cached = 0;     // Cached
  std::uint64_t available = 0;  // MemAvailable: the kernel's own estimate
};

// Throws sdk::FailedPrecondition when MemTotal is missing.
MemInfo read_meminfo();

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
// (and the daemon that can undo the load) survive a 100% ask.
std::uint64_t safety_floor(const MemInfo &m);
// wanted(), cut to what the floor allows.
std::uint64_t allowed(const MemTarget &t, const MemInfo &m);

// The figures behind a sizing, for the result and the dry run.
nlohmann::json describe(const MemTarget &t, const MemInfo &m);

}  // namespace blade::os
