// PLACEHOLDER: the script faults are being written; nothing registered yet.
#include "fault.hpp"

namespace blade::os {

void register_script_faults(FaultTable &, const Host &) {}

}  // namespace blade::os
