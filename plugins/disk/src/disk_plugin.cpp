// The disk plugin: fill and burn, built on the SDK like any third-party
// plugin, independent of the os plugin.
#include <string>

#include <blade/plugin.hpp>

#include "disk_burn.hpp"
#include "disk_fill.hpp"

namespace blade::disk {

// Generated from spec-yaml/disk.yaml at build time.
extern const unsigned char kSpecYaml[];

namespace {

class DiskPlugin {
 public:
  explicit DiskPlugin(sdk::Host host) : fill_(host), burn_(host) {}

  sdk::Outcome create(const sdk::Request &req, sdk::Call &call) {
    return is_fill(req) ? fill_.create(req, call) : burn_.create(req, call);
  }
  void destroy(const sdk::Request &req, sdk::Call &) {
    is_fill(req) ? fill_.destroy(req) : burn_.destroy(req);
  }
  std::string dry_run(const sdk::Request &req, sdk::Call &) {
    return is_fill(req) ? fill_.dry_run(req) : burn_.dry_run(req);
  }

 private:
  // The host resolved aliases and checked the pair against the spec, which
  // has only these two actions.
  static bool is_fill(const sdk::Request &req) {
    if (req.target() != "disk" || (req.action() != "fill" && req.action() != "burn")) {
      throw sdk::NotSupported("disk plugin: no code for " + std::string(req.target()) + " " +
                              std::string(req.action()));
    }
    return req.action() == "fill";
  }

  DiskFill fill_;
  DiskBurn burn_;
};

}  // namespace
}  // namespace blade::disk

BLADE_PLUGIN(blade::disk::DiskPlugin, "disk", "0.1.0",
             reinterpret_cast<const char *>(blade::disk::kSpecYaml))
