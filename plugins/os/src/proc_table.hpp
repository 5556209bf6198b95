// Reading processes from /proc: what the process faults match on (name,
// command line, listening port) and how they recognise a process again later
// (pid plus start time, so a reused pid is never taken for the old process).
// The reading itself is shared with the other plugins
// (plugins/common/proc_reader.hpp); what only the os plugin matches on (the
// listening sockets of a port) is here. Only the standard library and
// Linux: the tests compile this file too.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "../../common/int_list.hpp"
#include "../../common/proc_reader.hpp"

namespace blade::os::proc {

using plugins::proc::list_pids;
using plugins::proc::parse_stat;
using plugins::proc::Process;
using plugins::proc::read_process;
using plugins::proc::same_process;
using plugins::proc::self_and_ancestors;
using plugins::proc::signal_if_same;
using plugins::proc::start_time_of;
using plugins::proc::Stat;
using plugins::proc::thread_group_of;

// Inodes of the TCP sockets in LISTEN state on one of `ports` (a list with
// ranges, as local-port gives it), read from one /proc/net/tcp or tcp6 text.
std::set<std::uint64_t> listening_inodes(std::string_view net_tcp_text,
                                         const std::vector<plugins::IntRange> &ports);

// Inodes of the LISTEN sockets on one of `ports` (IPv4 and IPv6) of this netns.
std::set<std::uint64_t> listening_inodes(const std::vector<plugins::IntRange> &ports);

// Pids whose fd table holds one of `inodes`, ascending.
std::vector<pid_t> socket_owners(const std::set<std::uint64_t> &inodes);

}  // namespace blade::os::proc
