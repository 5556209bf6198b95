// Placeholder: the drop family is not written yet; it adds no action.
#include "fault_families.hpp"

namespace blade::network {

void add_drop_fault(sdk::FaultRouter &, sdk::Host) {}

}  // namespace blade::network
