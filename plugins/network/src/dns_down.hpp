// network dns_down: /etc/resolv.conf pointed at a stub resolver the daemon
// runs on loopback (dns_stub_resolver.hpp), which answers only for the
// allowed domains; its nameserver lines are hidden meanwhile, and both
// edits are undone by destroy (dns_marked_file.hpp).
#pragma once

#include <memory>

#include <blade/fault_router.hpp>

namespace blade::network {

std::unique_ptr<sdk::Fault> make_dns_down(sdk::Host host);

}  // namespace blade::network
