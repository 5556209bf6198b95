// What a cpu load is judged by: the host's average (/proc/stat's "cpu"
// line), one core ("cpuN"), or a cgroup (its cpu usage against its quota,
// for a load inside a container). The burners' feedback loop is one; only
// the meter it reads differs.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "proc_stat.hpp"

namespace blade::os {

// A cumulative reading of what is judged: busy and total time in one unit,
// so that the busy share between two readings (utilisation_percent) is its
// utilisation over that interval.
class CpuMeter {
 public:
  virtual ~CpuMeter() = default;
  virtual std::optional<CpuTicks> read() const = 0;
  // How many cores' worth the judged figure is of: one burner spinning all
  // the time adds 1/cores() to it.
  virtual double cores() const = 0;
  // What of a burner's spin the meter counts: /proc/stat charges a spin's
  // wall time as busy, also when the hypervisor stole part of it (so the
  // burners pace by the wall clock); a cgroup counts only the cpu time its
  // threads got, so under contention a spin of some wall time adds less
  // (and the burners pace by their own cpu time).
  virtual bool counts_cpu_time() const { return false; }
};

// The host's average over `host_cores` cores.
std::unique_ptr<CpuMeter> host_meter(int host_cores);
// One core of the host.
std::unique_ptr<CpuMeter> core_meter(int core);

// A cgroup's cpu files: where its usage and its quota are read.
struct CgroupCpu {
  bool v2 = false;
  std::string usage_dir;  // v1: in the cpuacct hierarchy (cpuacct.usage); v2: the cgroup (cpu.stat)
  std::string quota_dir;  // v1: in the cpu hierarchy (cpu.cfs_*); v2: the cgroup (cpu.max)
  std::string quota_top;  // the hierarchy's mount point: ancestors' quotas are read up to it
};

// The calling process's cpu cgroup (v1 when its cpu controller is on a v1
// hierarchy, else v2), every path under `root` ("" on a real system).
// Throws sdk::FailedPrecondition saying what is missing.
CgroupCpu find_cgroup_cpu(const std::string &root = "");

// The cgroup's cpu time so far, in ns; nullopt when unreadable.
std::optional<std::uint64_t> read_cgroup_usage_ns(const CgroupCpu &cg);

// The tightest cpu quota, in cores, of the cgroup and its ancestors up to the
// mount point (a pod's limit binds its containers); nullopt when none has
// one (v1 cfs_quota_us -1, v2 cpu.max "max ...").
std::optional<double> read_quota_cores(const CgroupCpu &cg);

// A cgroup judged against `capacity` cores: busy is its usage, total is
// wall time times the capacity, so 100% is the whole capacity in use.
std::unique_ptr<CpuMeter> cgroup_meter(CgroupCpu cg, double capacity);

}  // namespace blade::os
