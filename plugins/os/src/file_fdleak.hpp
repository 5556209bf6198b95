// file fdleak (file_fdleak.cpp): registered by register_file_faults.
#pragma once

#include "fault.hpp"

namespace blade::os {

void register_file_fdleak(FaultTable &table, const Host &host);

}  // namespace blade::os
