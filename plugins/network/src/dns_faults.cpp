// Placeholder: the dns family is not written yet; it adds no action.
#include "fault_families.hpp"

namespace blade::network {

void add_dns_faults(sdk::FaultRouter &, sdk::Host) {}

}  // namespace blade::network
