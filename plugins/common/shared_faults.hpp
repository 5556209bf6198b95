// The fault families of the os, disk and network plugins, each built once
// into a static library of its folder (plugins/<name>/meson.build) and
// linked by two front ends: the host plugin (os.so, disk.so, network.so)
// and the cri plugin's helper, which runs the same faults inside a
// container's namespaces and cgroup. One implementation, two front ends.
#pragma once

#include <blade/fault_router.hpp>
#include <blade/plugin.hpp>

namespace blade::os {
// cpu, mem, process, file, script, strace, time, systemd
void register_os_faults(sdk::FaultRouter &router, const sdk::Host &host);
}  // namespace blade::os

namespace blade::disk {
// fill, burn
void register_disk_faults(sdk::FaultRouter &router, const sdk::Host &host);
}  // namespace blade::disk

namespace blade::network {
// delay, loss, duplicate, corrupt, reorder, rate, drop, dns, dns_down, occupy
void register_network_faults(sdk::FaultRouter &router, const sdk::Host &host);
}  // namespace blade::network
