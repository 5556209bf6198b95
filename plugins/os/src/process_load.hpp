// process load: idle processes started until destroyed (process_load.cpp).
#pragma once

#include "fault.hpp"

namespace blade::os {

void register_process_load(FaultTable &table, const Host &host);

}  // namespace blade::os
