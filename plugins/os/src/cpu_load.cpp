// PLACEHOLDER: the cpu faults are being written; nothing registered yet.
#include "fault.hpp"

namespace blade::os {

void register_cpu_faults(FaultTable &, const Host &) {}

}  // namespace blade::os
