// The disk plugin: fill and burn, built on the SDK like any third-party
// plugin, independent of the os plugin. The SDK's router sends each action
// to its class.
#include <memory>

#include <blade/fault_router.hpp>
#include <blade/plugin.hpp>

#include "disk_burn.hpp"
#include "disk_fill.hpp"

namespace blade::disk {

// Generated from spec-yaml/disk.yaml at build time.
extern const unsigned char kSpecYaml[];

namespace {

class DiskPlugin : public sdk::FaultRouter {
 public:
  explicit DiskPlugin(sdk::Host host) : FaultRouter("disk") {
    add("disk", "fill", std::make_unique<DiskFill>(host));
    add("disk", "burn", std::make_unique<DiskBurn>(host));
  }
};

}  // namespace
}  // namespace blade::disk

BLADE_PLUGIN(blade::disk::DiskPlugin, "disk", "0.1.0",
             reinterpret_cast<const char *>(blade::disk::kSpecYaml))
