#include "control_path.hpp"

#include <algorithm>
#include <map>

#include "socket_table.hpp"

namespace blade::network {
namespace {

constexpr std::uint16_t kSsh = 22;

}  // namespace

ControlPath control_path(pid_t daemon_pid) {
  ControlPath path;
  std::map<std::uint16_t, std::string> why;
  const auto mine = socket_inodes_of(daemon_pid);
  for (const SocketEntry &s : tcp_sockets(daemon_pid)) {
    if (!mine.count(s.inode)) continue;
    if (s.state == kTcpListen)
      why.emplace(s.local_port, "the daemon's listener (its API)");
    else if (s.state == kTcpEstablished)
      why.emplace(s.local_port, "a connection of the daemon's");
  }
  why.emplace(kSsh, "SSH");
  for (const auto &[port, reason] : why) {
    path.local_ports.push_back(port);
    path.excluded.push_back({{"port", port}, {"why", reason}});
  }
  path.remote_ports.push_back(kSsh);
  return path;
}

ControlPath control_path_for(const sdk::Request &req, pid_t daemon_pid) {
  if (req.flag_bool("include-control-ports")) return ControlPath{};
  return control_path(daemon_pid);
}

}  // namespace blade::network
