// Placeholder: the occupy family is not written yet; it adds no action.
#include "fault_families.hpp"

namespace blade::network {

void add_occupy_fault(sdk::FaultRouter &, sdk::Host) {}

}  // namespace blade::network
