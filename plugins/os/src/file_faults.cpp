// PLACEHOLDER: the file faults are being written; nothing registered yet.
#include "fault.hpp"

namespace blade::os {

void register_file_faults(FaultTable &, const Host &) {}

}  // namespace blade::os
