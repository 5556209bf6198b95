// The disk plugin: fill and burn, built on the SDK like any third-party
// plugin, independent of the os plugin. The SDK's router sends each action
// to its class; the classes are compiled once into the disk fault library,
// which the cri helper links too.
#include <blade/fault_router.hpp>
#include <blade/plugin.hpp>

#include "../../common/shared_faults.hpp"

namespace blade::disk {

// Generated from spec-yaml/disk.yaml at build time.
extern const unsigned char kSpecYaml[];

namespace {

class DiskPlugin : public sdk::FaultRouter {
 public:
  explicit DiskPlugin(sdk::Host host) : FaultRouter("disk") { register_disk_faults(*this, host); }
};

}  // namespace
}  // namespace blade::disk

BLADE_PLUGIN(blade::disk::DiskPlugin, "disk", "0.1.0",
             reinterpret_cast<const char *>(blade::disk::kSpecYaml))
