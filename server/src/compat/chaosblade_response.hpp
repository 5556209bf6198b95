// Sending ChaosBlade's Response JSON (blade/core/model/chaosblade_response.hpp)
// as an HTTP answer of the compatibility routes.
#pragma once

#include <httplib.h>

#include "blade/core/model/chaosblade_response.hpp"

namespace blade::server {

void send_chaosblade(httplib::Response &res, int status, const ChaosbladeResponse &response);

}  // namespace blade::server
