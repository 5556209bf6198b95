#include "mem_figures.hpp"

#include <algorithm>
#include <fstream>

#include <blade/plugin.hpp>

#include "../../common/cgroup_paths.hpp"

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
  // 256 MB or 2% of the memory, whichever is more: above the kernel's own
  // reserves (min_free_kbytes is tens of MB) with room for the daemon and a
  // shell to destroy the load.
  m.floor = std::max(256 * kMiB, m.total / 50);
  return m;
}

namespace {

// v1 reports "no limit" as the largest page-aligned long (9223372036854771712);
// anything this large is none.
constexpr std::uint64_t kNoLimit = std::uint64_t{1} << 62;

}  // namespace

CgroupMemory find_cgroup_memory(const std::string &root) {
  const auto where = plugins::cgroup::Placement::of("self", root);
  if (!where)
    throw sdk::FailedPrecondition("mem_meter cgroup: cannot read " + root +
                                  "/proc/self/cgroup or " + root + "/proc/self/mountinfo");
  CgroupMemory cg;
  if (auto v1 = where->v1("memory")) {
    cg.dir = *v1;
  } else if (auto v2 = where->v2()) {
    cg.v2 = true;
    cg.dir = *v2;
  } else {
    throw sdk::FailedPrecondition(
        "mem_meter cgroup: the process is in no memory cgroup it can see (neither a mounted v1 "
        "memory hierarchy nor a mounted v2 cgroup in /proc/self/cgroup)");
  }
  const char *usage = cg.v2 ? "/memory.current" : "/memory.usage_in_bytes";
  if (!plugins::cgroup::read_number<std::uint64_t>(cg.dir + usage))
    throw sdk::FailedPrecondition("mem_meter cgroup: cannot read " + cg.dir + usage);
  return cg;
}

MemInfo read_cgroup_meminfo(const CgroupMemory &cg, const MemInfo &host) {
  using plugins::cgroup::read_keyed;
  using plugins::cgroup::read_number;
  const auto usage =
      read_number<std::uint64_t>(cg.dir + (cg.v2 ? "/memory.current" : "/memory.usage_in_bytes"));
  if (!usage) throw sdk::FailedPrecondition("mem_meter cgroup: cannot read the usage of " + cg.dir);
  // v2 "max" is not a number: no limit, as v1's huge one.
  auto limit =
      read_number<std::uint64_t>(cg.dir + (cg.v2 ? "/memory.max" : "/memory.limit_in_bytes"));
  if (limit && *limit >= kNoLimit) limit.reset();
  // v1's total_cache counts the cgroup's children as usage_in_bytes does.
  auto cache = cg.v2 ? read_keyed(cg.dir + "/memory.stat", "file")
                     : read_keyed(cg.dir + "/memory.stat", "total_cache");
  if (!cache && !cg.v2) cache = read_keyed(cg.dir + "/memory.stat", "cache");

  MemInfo m;
  m.cgroup = MemInfo::Cgroup{cg.dir, limit, *usage};
  m.total = std::min(limit.value_or(host.total), host.total);
  m.free = m.total > *usage ? m.total - *usage : 0;
  m.cached = std::min(cache.value_or(0), *usage);
  // 16 MB or 2% of the limit: the container's own processes keep room to
  // allocate without meeting the OOM killer at the limit.
  m.floor = std::max(16 * kMiB, m.total / 50);
  // What the cgroup can still have (its free room and its reclaimable page
  // cache), but never more than the host has above its own floor: a limit
  // beyond what the host can give must not take the host down.
  const std::uint64_t host_room = host.available > host.floor ? host.available - host.floor : 0;
  m.available = std::min(m.free + m.cached, host_room + m.floor);
  return m;
}

MemInfo MemMeter::read() const {
  const MemInfo host = read_meminfo();
  return cgroup ? read_cgroup_meminfo(*cgroup, host) : host;
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

std::uint64_t safety_floor(const MemInfo &m) {
  return m.floor;
}

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
  out["meter"] = m.cgroup ? "cgroup" : "host";
  if (m.cgroup) {
    out["cgroup"] = m.cgroup->dir;
    out["limit_bytes"] =
        m.cgroup->limit ? nlohmann::json(*m.cgroup->limit) : nlohmann::json(nullptr);
    out["usage_bytes"] = m.cgroup->usage;
  }
  if (!t.cache) out["include_buffer_cache"] = t.include_buffer_cache;
  return out;
}

}  // namespace blade::os
