// The control path no network fault may cut unless told to
// (`include-control-ports`): the daemon's own TCP listeners (its API port)
// and the local ports of its established connections (its clients, as they
// talk to it now), and SSH, port 22 both ways (to this host's sshd and from
// here to another host). The daemon is the process the plugin is loaded
// into, so this is read from its own sockets, in its network namespace; a
// fault aimed at another namespace (a container's) still spares port 22.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include <blade/plugin.hpp>
#include <nlohmann/json.hpp>

namespace blade::network {

struct ControlPath {
  // Traffic from or to these local ports is left alone (sorted, unique):
  // the daemon's listeners, its connections' local ports, and 22.
  std::vector<std::uint16_t> local_ports;
  // Traffic to these remote ports is left alone: 22 (SSH from this host).
  std::vector<std::uint16_t> remote_ports;
  // Why each port is there, for the result: {"port": 8080, "why": "..."}.
  nlohmann::json excluded = nlohmann::json::array();

  bool empty() const { return local_ports.empty() && remote_ports.empty(); }
};

// The control path of the daemon `daemon_pid` (sdk::Host::daemon_pid()).
ControlPath control_path(pid_t daemon_pid);

// The control path unless the request says `include-control-ports`, in
// which case nothing is spared (and the result says so).
ControlPath control_path_for(const sdk::Request &req, pid_t daemon_pid);

}  // namespace blade::network
