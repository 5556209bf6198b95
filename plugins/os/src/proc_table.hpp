// Reading processes from /proc: what the process faults match on (name,
// command line, listening port) and how they recognise a process again later
// (pid plus start time, so a reused pid is never taken for the old process).
// Only the standard library and Linux: the tests compile this file too.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "../../common/int_list.hpp"

namespace blade::os::proc {

// The fields of /proc/<pid>/stat the faults need.
struct Stat {
  std::string comm;
  char state = '?';
  pid_t ppid = 0;
  std::uint64_t flags = 0;       // field 9: PF_* flags
  std::uint64_t start_time = 0;  // field 22: clock ticks after boot
};

// Parses one /proc/<pid>/stat line. The comm may itself hold spaces and ')',
// so the fields are read after the LAST ')'. nullopt when malformed.
std::optional<Stat> parse_stat(std::string_view line);

struct Process {
  pid_t pid = 0;
  Stat stat;
  std::string cmdline;  // NULs as spaces, trailing space dropped; empty for kernel threads
  bool kernel_thread() const;
  bool dead() const { return stat.state == 'Z' || stat.state == 'X'; }
};

// One process, or nullopt if it is gone (or unreadable).
std::optional<Process> read_process(pid_t pid);

// Start time of `pid` now, or nullopt if it is gone.
std::optional<std::uint64_t> start_time_of(pid_t pid);

// True when `pid` is still the process that had `start_time`. A pid whose
// start time differs is another process that reused the number.
bool same_process(std::optional<std::uint64_t> current_start_time, std::uint64_t recorded);

// Every numeric entry of /proc (thread-group leaders), ascending.
std::vector<pid_t> list_pids();

// The thread group (process) a task id belongs to; nullopt if gone.
std::optional<pid_t> thread_group_of(pid_t tid);

// Inodes of the TCP sockets in LISTEN state on one of `ports` (a list with
// ranges, as local-port gives it), read from one /proc/net/tcp or tcp6 text.
std::set<std::uint64_t> listening_inodes(std::string_view net_tcp_text,
                                         const std::vector<plugins::IntRange> &ports);

// Inodes of the LISTEN sockets on one of `ports` (IPv4 and IPv6) of this netns.
std::set<std::uint64_t> listening_inodes(const std::vector<plugins::IntRange> &ports);

// Pids whose fd table holds one of `inodes`, ascending.
std::vector<pid_t> socket_owners(const std::set<std::uint64_t> &inodes);

// `pid`, its parent, and so on up to (and including) pid 1, in that order.
std::vector<pid_t> self_and_ancestors(pid_t pid);

// Sends `sig` to `pid` only if it still has `start_time`: through a pidfd,
// which pins the process, so the check and the signal see the same one.
// 0 on success, ESRCH when it is gone or was replaced, else the errno.
int signal_if_same(pid_t pid, std::uint64_t start_time, int sig);

}  // namespace blade::os::proc
