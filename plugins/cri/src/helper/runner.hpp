// The faults themselves, run inside the container: the os, disk and network
// fault families (the host plugins' own code, from their static libraries)
// on one router, called through the SDK's own descriptor as a host would
// call a plugin, with the inner host of inner_host.hpp.
#pragma once

#include <chrono>
#include <optional>

#include "../helper_protocol.hpp"
#include "channel.hpp"

namespace blade::cri {

// Runs req.op and answers with one done. After a create that succeeded it
// holds the fault (burner threads, held sockets, tracers live in this
// process) until the plugin writes {"op":"destroy"} (destroy on the same
// instance, from the create's record, then done) or closes its end (then it
// exits at once: what lives only here ends as a host plugin's fault ends
// with bladed, and what persists is undone by a later stateless destroy).
// Returns the process's exit code.
int run_request(Channel &channel, const HelperRequest &req,
                std::optional<std::chrono::steady_clock::time_point> deadline);

}  // namespace blade::cri
