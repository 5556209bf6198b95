// network dns: one line "<ip> <domain> [<domain> ...] # blade:<uid>"
// appended to /etc/hosts (with replace, after the lines naming those
// domains are hidden), undone again by destroy (dns_marked_file.hpp).
#pragma once

#include <memory>

#include <blade/fault_router.hpp>

namespace blade::network {

std::unique_ptr<sdk::Fault> make_hosts_entry(sdk::Host host);

}  // namespace blade::network
