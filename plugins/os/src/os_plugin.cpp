// The os plugin: cpu, mem, process, file and script faults, built on the SDK
// like any third-party plugin. Each family lives in its own file (compiled
// once into the os fault library, which the cri helper links too) and adds
// its actions to the SDK's router, which this class is.
#include <blade/plugin.hpp>

#include "../../common/shared_faults.hpp"
#include "fault.hpp"

namespace blade::os {

// Generated from spec-yaml/os.yaml at build time.
extern const unsigned char kSpecYaml[];

namespace {

class OsPlugin : public FaultTable {
 public:
  explicit OsPlugin(Host host) : FaultTable("os") { register_os_faults(*this, host); }
};

}  // namespace
}  // namespace blade::os

BLADE_PLUGIN(blade::os::OsPlugin, "os", "0.1.0",
             reinterpret_cast<const char *>(blade::os::kSpecYaml))
