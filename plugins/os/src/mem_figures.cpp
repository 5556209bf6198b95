#include "mem_figures.hpp"

#include <algorithm>
#include <fstream>

#include <blade/plugin.hpp>

namespace blade::os {

MemInfo read_meminfo() {
  MemInfo m;
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb) {
    std::getline(in, unit);
    if (key == "MemTotal:") m.total = kb * 1024;
    if (key == "MemFree:") m.free = kb * 1024;
    if (key == "Buffers:") m.buffers = kb * 1024;
    if (key == "Cached:") m.cached = kb * 1024;
    if (key == "MemAvailable:") m.available = kb * 1024;
  }
  if (m.total == 0) throw sdk::FailedPrecondition("cannot read MemTotal from /proc/meminfo");
  return m;
}

std::uint64_t MemTarget::counted_available(const MemInfo &m) const {
  if (cache || include_buffer_cache) return m.free;
  return m.free + m.buffers + m.cached;
}

std::uint64_t MemTarget::reserved(const MemInfo &m) const {
  if (percent > 0) return m.total / 100 * static_cast<std::uint64_t>(100 - percent);
  return reserve;
}

std::uint64_t MemTarget::wanted(const MemInfo &m) const {
  const std::uint64_t avail = counted_available(m), keep = reserved(m);
  return avail > keep ? avail - keep : 0;
}

// 256 MB or 2% of the memory, whichever is more: above the kernel's own
// reserves (min_free_kbytes is tens of MB) with room for the daemon and a
// shell to destroy the load.
std::uint64_t safety_floor(const MemInfo &m) { return std::max(256 * kMiB, m.total / 50); }

std::uint64_t allowed(const MemTarget &t, const MemInfo &m) {
  const std::uint64_t floor = safety_floor(m);
  const std::uint64_t room = m.available > floor ? m.available - floor : 0;
  return std::min(t.wanted(m), room);
}

nlohmann::json describe(const MemTarget &t, const MemInfo &m) {
  nlohmann::json out = {{"mode", t.cache ? "cache" : "ram"},
                        {"mem_total", m.total},
                        {"counted_available", t.counted_available(m)},
                        {"reserved", t.reserved(m)},
                        {"mem_available", m.available},
                        {"safety_floor", safety_floor(m)}};
  if (t.percent > 0) out["mem_percent"] = t.percent;
  if (!t.cache) out["include_buffer_cache"] = t.include_buffer_cache;
  return out;
}

}  // namespace blade::os
