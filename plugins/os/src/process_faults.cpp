// PLACEHOLDER: the process faults are being written; nothing registered yet.
#include "fault.hpp"

namespace blade::os {

void register_process_faults(FaultTable &, const Host &) {}

}  // namespace blade::os
