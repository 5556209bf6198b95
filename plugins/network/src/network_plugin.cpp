// The network plugin: ChaosBlade's `network` target (delay, loss,
// duplicate, corrupt, reorder, drop, dns, occupy) plus rate and dns_down,
// built on the SDK like any third-party plugin. The families are compiled
// once into the network fault library, which the cri helper links too.
#include "../../common/shared_faults.hpp"

namespace blade::network {

// Generated from spec-yaml/network.yaml at build time.
extern const unsigned char kSpecYaml[];

namespace {

class NetworkPlugin : public sdk::FaultRouter {
 public:
  explicit NetworkPlugin(sdk::Host host) : FaultRouter("network") {
    register_network_faults(*this, host);
  }
};

}  // namespace
}  // namespace blade::network

BLADE_PLUGIN(blade::network::NetworkPlugin, "network", "0.1.0",
             reinterpret_cast<const char *>(blade::network::kSpecYaml))
