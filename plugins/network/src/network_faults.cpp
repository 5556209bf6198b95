// Every network fault family on one router: the network plugin's and the
// cri helper's (plugins/common/shared_faults.hpp).
#include "../../common/shared_faults.hpp"
#include "fault_families.hpp"

namespace blade::network {

void register_network_faults(sdk::FaultRouter &router, const sdk::Host &host) {
  add_netem_faults(router, host);
  add_drop_fault(router, host);
  add_dns_faults(router, host);
  add_occupy_fault(router, host);
}

}  // namespace blade::network
