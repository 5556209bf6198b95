#include "cpu_meter.hpp"

#include <time.h>

#include <charconv>
#include <sstream>

#include <blade/plugin.hpp>

#include "../../common/cgroup_paths.hpp"
#include "../../common/proc_reader.hpp"

namespace blade::os {
namespace {

using plugins::proc::detail::read_text;

class HostMeter : public CpuMeter {
 public:
  explicit HostMeter(int cores) : cores_(cores) {}
  std::optional<CpuTicks> read() const override { return read_host_ticks(); }
  double cores() const override { return cores_; }

 private:
  int cores_;
};

class CoreMeter : public CpuMeter {
 public:
  explicit CoreMeter(int core) : core_(core) {}
  std::optional<CpuTicks> read() const override { return read_core_ticks(core_); }
  double cores() const override { return 1; }

 private:
  int core_;
};

std::uint64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

class CgroupMeter : public CpuMeter {
 public:
  CgroupMeter(CgroupCpu cg, double capacity) : cg_(std::move(cg)), capacity_(capacity) {}
  std::optional<CpuTicks> read() const override {
    const auto usage = read_cgroup_usage_ns(cg_);
    if (!usage) return std::nullopt;
    return CpuTicks{*usage,
                    static_cast<std::uint64_t>(static_cast<double>(monotonic_ns()) * capacity_)};
  }
  double cores() const override { return capacity_; }
  bool counts_cpu_time() const override { return true; }

 private:
  CgroupCpu cg_;
  double capacity_;
};

// One level's quota in cores; nullopt when it has none (or no such file).
std::optional<double> level_quota(const std::string &dir, bool v2) {
  if (v2) {
    // cpu.max: "<quota|max> <period>"
    const auto text = read_text(dir + "/cpu.max");
    if (!text) return std::nullopt;
    std::istringstream in(*text);
    std::string quota;
    double period = 0;
    if (!(in >> quota >> period) || quota == "max" || period <= 0) return std::nullopt;
    double q = 0;
    auto [end, ec] = std::from_chars(quota.data(), quota.data() + quota.size(), q);
    if (ec != std::errc() || q <= 0) return std::nullopt;
    return q / period;
  }
  const auto quota = plugins::cgroup::read_number<long long>(dir + "/cpu.cfs_quota_us");
  const auto period = plugins::cgroup::read_number<long long>(dir + "/cpu.cfs_period_us");
  if (!quota || !period || *quota <= 0 || *period <= 0) return std::nullopt;  // -1: none
  return static_cast<double>(*quota) / static_cast<double>(*period);
}

}  // namespace

std::unique_ptr<CpuMeter> host_meter(int host_cores) {
  return std::make_unique<HostMeter>(host_cores);
}

std::unique_ptr<CpuMeter> core_meter(int core) {
  return std::make_unique<CoreMeter>(core);
}

std::unique_ptr<CpuMeter> cgroup_meter(CgroupCpu cg, double capacity) {
  return std::make_unique<CgroupMeter>(std::move(cg), capacity);
}

CgroupCpu find_cgroup_cpu(const std::string &root) {
  const auto where = plugins::cgroup::Placement::of("self", root);
  if (!where)
    throw sdk::FailedPrecondition("cpu_meter cgroup: cannot read " + root +
                                  "/proc/self/cgroup or " + root + "/proc/self/mountinfo");
  CgroupCpu cg;
  const bool on_v1 =
      std::any_of(where->memberships().begin(), where->memberships().end(), [](const auto &m) {
        return m.hierarchy != "0" &&
               std::find(m.controllers.begin(), m.controllers.end(), "cpu") != m.controllers.end();
      });
  if (on_v1) {
    const auto cpu = where->v1("cpu");
    const auto acct = where->v1("cpuacct");
    if (!cpu || !acct)
      throw sdk::FailedPrecondition(
          "cpu_meter cgroup: the process's v1 cpu and cpuacct cgroups are not both mounted where "
          "it can see them (/proc/self/mountinfo)");
    cg.quota_dir = *cpu;
    cg.usage_dir = *acct;
  } else {
    const auto dir = where->v2();
    if (!dir)
      throw sdk::FailedPrecondition(
          "cpu_meter cgroup: the process is in no cpu cgroup (neither a v1 cpu hierarchy nor a "
          "mounted v2 cgroup in /proc/self/cgroup)");
    cg.v2 = true;
    cg.quota_dir = cg.usage_dir = *dir;
  }
  cg.quota_top = where->mount_of(cg.quota_dir);
  if (!read_cgroup_usage_ns(cg))
    throw sdk::FailedPrecondition("cpu_meter cgroup: cannot read the cpu usage of " + cg.usage_dir +
                                  (cg.v2 ? "/cpu.stat" : "/cpuacct.usage"));
  return cg;
}

std::optional<std::uint64_t> read_cgroup_usage_ns(const CgroupCpu &cg) {
  if (!cg.v2) return plugins::cgroup::read_number<std::uint64_t>(cg.usage_dir + "/cpuacct.usage");
  const auto usec = plugins::cgroup::read_keyed(cg.usage_dir + "/cpu.stat", "usage_usec");
  if (!usec) return std::nullopt;
  return *usec * 1000;
}

std::optional<double> read_quota_cores(const CgroupCpu &cg) {
  std::optional<double> tightest;
  std::string dir = cg.quota_dir;
  for (;;) {
    if (auto q = level_quota(dir, cg.v2); q && (!tightest || *q < *tightest)) tightest = q;
    const auto slash = dir.rfind('/');
    if (dir.size() <= cg.quota_top.size() || slash == std::string::npos) break;
    dir.resize(slash);
  }
  return tightest;
}

}  // namespace blade::os
