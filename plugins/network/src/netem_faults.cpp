// Placeholder: the netem family is not written yet; it adds no action.
#include "fault_families.hpp"

namespace blade::network {

void add_netem_faults(sdk::FaultRouter &, sdk::Host) {}

}  // namespace blade::network
