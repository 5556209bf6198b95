// The plugin's three actions, each one running proxy per experiment:
// `http proxy` follows the daemon's HTTP fault policies (topic
// "http.rules"), `http delay` and `http abort` apply the one rule their
// flags give.
#pragma once

#include <memory>

#include <blade/fault_router.hpp>

#include "proxy_fleet.hpp"

namespace blade::http {

// The topic the host republishes the compiled rule set on.
inline constexpr const char *kRulesTopic = "http.rules";

void add_proxy_faults(sdk::FaultRouter &router, sdk::Host host, ProxyFleet &fleet);

}  // namespace blade::http
