// The network plugin: ChaosBlade's `network` target (delay, loss,
// duplicate, corrupt, reorder, drop, dns, occupy) plus rate and dns_down,
// built on the SDK like any third-party plugin.
#include "fault_families.hpp"

namespace blade::network {

// Generated from spec-yaml/network.yaml at build time.
extern const unsigned char kSpecYaml[];

namespace {

class NetworkPlugin : public sdk::FaultRouter {
 public:
  explicit NetworkPlugin(sdk::Host host) : FaultRouter("network") {
    add_netem_faults(*this, host);
    add_drop_fault(*this, host);
    add_dns_faults(*this, host);
    add_occupy_fault(*this, host);
  }
};

}  // namespace
}  // namespace blade::network

BLADE_PLUGIN(blade::network::NetworkPlugin, "network", "0.1.0",
             reinterpret_cast<const char *>(blade::network::kSpecYaml))
