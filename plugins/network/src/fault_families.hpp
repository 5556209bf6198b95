// The network plugin's fault families, each in its own files; each adds
// its (target, action) pairs to the plugin's router.
#pragma once

#include <blade/fault_router.hpp>
#include <blade/plugin.hpp>

namespace blade::network {

// delay, loss, duplicate, corrupt, reorder, rate: qdiscs over rtnetlink
void add_netem_faults(sdk::FaultRouter &router, sdk::Host host);
// drop: one nftables table per experiment
void add_drop_fault(sdk::FaultRouter &router, sdk::Host host);
// dns, dns_down: the resolver's files
void add_dns_faults(sdk::FaultRouter &router, sdk::Host host);
// occupy: a port held by the daemon
void add_occupy_fault(sdk::FaultRouter &router, sdk::Host host);

}  // namespace blade::network
