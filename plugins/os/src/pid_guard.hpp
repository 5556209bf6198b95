// The processes no os fault may hit when the user names them by pid: bladed
// itself, its parent and further ancestors, pid 1, kernel threads, and a
// process whose command line holds "blade" (the blade CLI that sent the
// request, or a sudo or shell wrapping it). Shared by `process kill|stop
// --pid` and `strace --pid`, so both refuse the same pids with the same words.
#pragma once

#include <sys/types.h>

#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include "proc_table.hpp"

namespace blade::os {

// The mark a blade process carries in its command line.
inline constexpr std::string_view kBladeMark = "blade";

bool is_blade_process(const proc::Process &p);

// Throws sdk::InvalidArgument on `flag` when `group` (the thread group of
// `pid`) must never be hit; `protected_pids` is the daemon's
// self_and_ancestors(daemon) and `parent` the daemon's parent. Returns the
// process (read once), or nullopt when it is gone.
std::optional<proc::Process> refuse_protected_pid(std::string_view flag, pid_t pid, pid_t group,
                                                  pid_t daemon, pid_t parent,
                                                  const std::set<pid_t> &protected_pids);

// A pid list flag ("1234,5678", no ranges): sorted, without repeats. Throws
// sdk::InvalidArgument on `flag` for an empty list or an item that is not a
// pid. Shared by `process --pid` and `strace --pid`.
std::vector<pid_t> parse_pid_list(std::string_view flag, std::string_view value);

// The same for one pid on its own, plus bladed's descendants (its own
// helpers, another fault's tracer or memory holder). Returns the thread
// group's process; a pid that does not exist is an InvalidArgument too.
proc::Process refuse_protected_target(std::string_view flag, pid_t pid, pid_t daemon);

}  // namespace blade::os
