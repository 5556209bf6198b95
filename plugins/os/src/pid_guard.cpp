#include "pid_guard.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <blade/plugin.hpp>

#include "../../common/int_list.hpp"

namespace blade::os {

std::vector<pid_t> parse_pid_list(std::string_view flag, std::string_view value) {
  constexpr std::int64_t kPidMaxLimit = 4194304;  // PID_MAX_LIMIT on 64-bit kernels
  std::vector<plugins::IntRange> ranges;
  try {
    ranges = plugins::parse_int_list(value, {1, kPidMaxLimit, false, "pid", "pids like 1234,5678"});
  } catch (const std::invalid_argument &e) {
    throw sdk::InvalidArgument(std::string(flag) + ": " + e.what());
  }
  std::vector<pid_t> pids;
  for (const auto &r : ranges)
    pids.push_back(static_cast<pid_t>(r.first));
  std::sort(pids.begin(), pids.end());
  pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
  return pids;
}

bool is_blade_process(const proc::Process &p) {
  return p.cmdline.find(kBladeMark) != std::string::npos;
}

std::optional<proc::Process> refuse_protected_pid(std::string_view flag, pid_t pid, pid_t group,
                                                  pid_t daemon, pid_t parent,
                                                  const std::set<pid_t> &protected_pids) {
  const std::string what = std::string(flag) + ": " + std::to_string(pid);
  if (group == daemon) throw sdk::InvalidArgument(what + " is bladed itself");
  if (group == 1) throw sdk::InvalidArgument(what + " is init (pid 1)");
  if (group == parent) throw sdk::InvalidArgument(what + " is the parent of bladed");
  if (protected_pids.count(group)) throw sdk::InvalidArgument(what + " is an ancestor of bladed");
  auto p = proc::read_process(group);
  if (p && p->kernel_thread()) throw sdk::InvalidArgument(what + " is a kernel thread");
  if (p && is_blade_process(*p))
    throw sdk::InvalidArgument(what + " is a blade process (its command line holds '" +
                               std::string(kBladeMark) + "')");
  return p;
}

proc::Process refuse_protected_target(std::string_view flag, pid_t pid, pid_t daemon) {
  const std::vector<pid_t> chain = proc::self_and_ancestors(daemon);
  const std::set<pid_t> protected_pids(chain.begin(), chain.end());
  const pid_t group = proc::thread_group_of(pid).value_or(pid);
  const pid_t parent = chain.size() > 1 ? chain[1] : 0;
  auto p = refuse_protected_pid(flag, pid, group, daemon, parent, protected_pids);
  if (!p || p->dead())
    throw sdk::InvalidArgument(std::string(flag) + ": no process " + std::to_string(pid));
  // Walk up from the target: one of bladed's own children is not the user's.
  pid_t up = p->stat.ppid;
  for (int depth = 0; up > 1 && depth < 4096; ++depth) {
    if (up == daemon)
      throw sdk::InvalidArgument(std::string(flag) + ": " + std::to_string(pid) +
                                 " is a child of bladed (one of its own helpers)");
    auto q = proc::read_process(up);
    up = q ? q->stat.ppid : 0;
  }
  return std::move(*p);
}

}  // namespace blade::os
