// The kernel's socket tables as /proc/<pid>/net/{tcp,tcp6,udp,udp6} show
// them (the table of that process's network namespace), and which socket
// inodes a process holds (/proc/<pid>/fd). What the control path and
// `network occupy` (who holds a port) are worked out from; no tool's output
// is parsed.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace blade::network {

// TCP states as the tables number them (include/net/tcp_states.h).
constexpr int kTcpEstablished = 1;
constexpr int kTcpListen = 10;

struct SocketEntry {
  int family = 0;  // AF_INET or AF_INET6
  std::array<std::uint8_t, 16> local{};  // network byte order
  std::uint16_t local_port = 0;
  std::array<std::uint8_t, 16> remote{};
  std::uint16_t remote_port = 0;
  int state = 0;
  unsigned long inode = 0;
};

// One table file, e.g. "/proc/1234/net/tcp6". Missing or unreadable: empty.
std::vector<SocketEntry> read_socket_table(const std::string &path);

// TCP (v4 and v6) or UDP sockets of the network namespace `pid` is in.
std::vector<SocketEntry> tcp_sockets(pid_t pid);
std::vector<SocketEntry> udp_sockets(pid_t pid);

// The inodes of the sockets `pid` has open (empty when it cannot be read).
std::set<unsigned long> socket_inodes_of(pid_t pid);

// Every process (pid) holding one of `inodes`, found by scanning /proc.
std::vector<pid_t> holders_of(const std::set<unsigned long> &inodes);

}  // namespace blade::network
