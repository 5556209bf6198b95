// The processes no fault may hit: bladed itself, its parent and further
// ancestors, pid 1, kernel threads, a process whose command line holds
// "blade" (the blade CLI that sent the request, or a sudo or shell wrapping
// it), and (for a pid found rather than matched) bladed's own children.
// Shared by every fault that signals a process: os `process kill|stop
// --pid` and `strace --pid`, network `occupy --force` (the holder of the
// port), so all refuse the same pids with the same words. Header only,
// shared by the plugins of this repository.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <blade/plugin.hpp>

#include "int_list.hpp"
#include "proc_reader.hpp"

namespace blade::plugins {

// The mark a blade process carries in its command line.
inline constexpr std::string_view kBladeMark = "blade";

inline bool is_blade_process(const proc::Process &p) {
  return p.cmdline.find(kBladeMark) != std::string::npos;
}

// Why thread group `group` must never be hit ("is bladed itself", ...), or
// nullopt when nothing protects it; `p` is the process as read (nullopt
// when gone), `protected_pids` the daemon's self_and_ancestors(daemon) and
// `parent` the daemon's parent. Bladed's children are not looked for here
// (a matcher skips them on its own): see child_of_daemon.
inline std::optional<std::string> protected_reason(pid_t group, pid_t daemon, pid_t parent,
                                                   const std::set<pid_t> &protected_pids,
                                                   const std::optional<proc::Process> &p) {
  if (group == daemon) return "is bladed itself";
  if (group == 1) return "is init (pid 1)";
  if (group == parent) return "is the parent of bladed";
  if (protected_pids.count(group)) return "is an ancestor of bladed";
  if (p && p->kernel_thread()) return "is a kernel thread";
  if (p && is_blade_process(*p))
    return "is a blade process (its command line holds '" + std::string(kBladeMark) + "')";
  return std::nullopt;
}

// True when `p` descends from bladed (one of its own helpers: a tracer, a
// memory holder, a burner), found by walking up from `p`.
inline bool child_of_daemon(const proc::Process &p, pid_t daemon) {
  pid_t up = p.stat.ppid;
  for (int depth = 0; up > 1 && depth < 4096; ++depth) {
    if (up == daemon) return true;
    auto q = proc::read_process(up);
    up = q ? q->stat.ppid : 0;
  }
  return false;
}

// Throws sdk::InvalidArgument on `flag` when `group` (the thread group of
// `pid`) must never be hit; `protected_pids` is the daemon's
// self_and_ancestors(daemon) and `parent` the daemon's parent. Returns the
// process (read once), or nullopt when it is gone.
inline std::optional<proc::Process> refuse_protected_pid(std::string_view flag, pid_t pid,
                                                         pid_t group, pid_t daemon, pid_t parent,
                                                         const std::set<pid_t> &protected_pids) {
  // The cheap checks first, so bladed and its ancestors are refused
  // without reading anything of theirs.
  if (auto why = protected_reason(group, daemon, parent, protected_pids, std::nullopt))
    throw sdk::InvalidArgument(std::string(flag) + ": " + std::to_string(pid) + " " + *why);
  auto p = proc::read_process(group);
  if (auto why = protected_reason(group, daemon, parent, protected_pids, p))
    throw sdk::InvalidArgument(std::string(flag) + ": " + std::to_string(pid) + " " + *why);
  return p;
}

// A pid list flag ("1234,5678", no ranges): sorted, without repeats. Throws
// sdk::InvalidArgument on `flag` for an empty list or an item that is not a
// pid. Shared by `process --pid` and `strace --pid`.
inline std::vector<pid_t> parse_pid_list(std::string_view flag, std::string_view value) {
  constexpr std::int64_t kPidMaxLimit = 4194304;  // PID_MAX_LIMIT on 64-bit kernels
  std::vector<IntRange> ranges;
  try {
    ranges = parse_int_list(value, {1, kPidMaxLimit, false, "pid", "pids like 1234,5678"});
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

// bladed and its line of ancestors, read once: what the rules compare to.
struct DaemonLine {
  pid_t daemon = 0;
  pid_t parent = 0;
  std::set<pid_t> protected_pids;  // bladed, its parent, ... up to pid 1

  explicit DaemonLine(pid_t d) : daemon(d) {
    const std::vector<pid_t> chain = proc::self_and_ancestors(d);
    protected_pids.insert(chain.begin(), chain.end());
    parent = chain.size() > 1 ? chain[1] : 0;
  }
};

// Why process `pid` must never be hit, every rule above included (bladed's
// children too), or nullopt when it may be; for a fault that finds the
// process itself (the holder of a port) rather than being given it.
inline std::optional<std::string> why_protected(pid_t pid, pid_t daemon) {
  const DaemonLine line(daemon);
  const pid_t group = proc::thread_group_of(pid).value_or(pid);
  const auto p = proc::read_process(group);
  if (auto why = protected_reason(group, daemon, line.parent, line.protected_pids, p)) return why;
  if (p && child_of_daemon(*p, daemon)) return "is a child of bladed (one of its own helpers)";
  return std::nullopt;
}

// The same for one pid on its own, plus bladed's descendants (its own
// helpers, another fault's tracer or memory holder). Returns the thread
// group's process; a pid that does not exist is an InvalidArgument too.
inline proc::Process refuse_protected_target(std::string_view flag, pid_t pid, pid_t daemon) {
  const DaemonLine line(daemon);
  const pid_t group = proc::thread_group_of(pid).value_or(pid);
  auto p = refuse_protected_pid(flag, pid, group, daemon, line.parent, line.protected_pids);
  if (!p || p->dead())
    throw sdk::InvalidArgument(std::string(flag) + ": no process " + std::to_string(pid));
  if (child_of_daemon(*p, daemon))
    throw sdk::InvalidArgument(std::string(flag) + ": " + std::to_string(pid) +
                               " is a child of bladed (one of its own helpers)");
  return std::move(*p);
}

}  // namespace blade::plugins
