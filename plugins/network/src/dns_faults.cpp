// The dns family: network dns (an /etc/hosts line) and network dns_down
// (resolv.conf pointed at a stub resolver that answers only allowed
// domains).
#include "dns_down.hpp"
#include "fault_families.hpp"
#include "hosts_entry.hpp"

namespace blade::network {

void add_dns_faults(sdk::FaultRouter &router, sdk::Host host) {
  router.add("network", "dns", make_hosts_entry(host));
  router.add("network", "dns_down", make_dns_down(host));
}

}  // namespace blade::network
