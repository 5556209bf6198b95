// Who holds a TCP port, and stopping them: what `network occupy` needs
// before it can take a port someone else listens on. The holders are read
// from the kernel's socket tables of the daemon's network namespace
// (socket_table.hpp) and /proc; stopping goes through a pidfd pinned to the
// very process that was found (plugins/common/proc_reader.hpp), and never
// reaches a process the pid guard protects (plugins/common/pid_guard.hpp).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <blade/plugin.hpp>
#include <nlohmann/json.hpp>

namespace blade::network {

struct PortHolder {
  pid_t pid = 0;
  std::string comm;
  std::string cmdline;
  std::uint64_t start_time = 0;  // recognises the process again (pid reuse)
  // Why the pid guard protects it ("is bladed itself", ...); empty if not.
  std::string protected_why;
  nlohmann::json describe() const;  // {"pid", "comm", "cmdline"}
};

// The inodes of the TCP sockets (IPv4 and IPv6, any state but TIME_WAIT,
// which holds no inode) bound to local `port` in the network namespace of
// `netns_pid`.
std::set<unsigned long> tcp_inodes_on(std::uint16_t port, pid_t netns_pid);

// The TCP listeners on `port` that `pid` itself holds.
std::set<unsigned long> own_listeners_on(std::uint16_t port, pid_t pid);

// The processes holding one of `inodes`, each checked against the pid guard
// on behalf of daemon `daemon`. Processes already gone are left out.
std::vector<PortHolder> port_holders(const std::set<unsigned long> &inodes, pid_t daemon);

// "pid 1234 (nginx), pid 1240 (nginx)".
std::string holder_list(const std::vector<PortHolder> &holders);

// What stopping one holder took.
struct Stopped {
  PortHolder holder;
  std::string signal;  // "SIGTERM", "SIGKILL", or "" when it was gone already
  nlohmann::json describe() const;
};

// Stops `holders` (none protected): SIGTERM to each, up to `term_wait` for
// all to exit, then SIGKILL to those left and up to `kill_wait` more.
// Each signal reaches only the process that was found (same start time).
// Throws sdk::FailedPrecondition naming a holder that could not be
// signalled or did not exit.
std::vector<Stopped> stop_holders(const std::vector<PortHolder> &holders, const sdk::Call &call,
                                  std::chrono::milliseconds term_wait,
                                  std::chrono::milliseconds kill_wait);

}  // namespace blade::network
