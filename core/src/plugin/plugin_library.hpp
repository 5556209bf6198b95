// An opened plugin file whose descriptor passed the ABI handshake. Owning
// this keeps the code mapped; it is released only after the instance is
// shut down (see LoadedPlugin).
#pragma once

#include <filesystem>
#include <memory>

#include <boost/dll/shared_library.hpp>

#include <blade/plugin.h>

#include "blade/core/plugin/loaded_plugin.hpp"
#include "plugin_config.hpp"

namespace blade {

class PluginLibrary {
 public:
  // Checks the file, loads it RTLD_NOW | RTLD_LOCAL and checks the
  // descriptor. Throws PluginRefused with the reason.
  explicit PluginLibrary(const std::filesystem::path &path);

  const blade_plugin_descriptor &descriptor() const { return *descriptor_; }
  const std::filesystem::path &path() const { return path_; }

 private:
  std::filesystem::path path_;
  boost::dll::shared_library library_;
  const blade_plugin_descriptor *descriptor_ = nullptr;
};

// The checks on the file itself, before any of its code runs: a regular
// file, not group/world-writable, owned by root or the daemon's user.
void check_plugin_file(const std::filesystem::path &path);

// Initialises the plugin of an opened library (calls its init, handing it
// `config`'s section) and wraps it. Throws PluginRefused if init fails.
// Defined in loaded_plugin.cpp.
std::shared_ptr<LoadedPlugin> make_loaded_plugin(std::unique_ptr<PluginLibrary> library,
                                                 PluginSpec spec, const HostSettings &settings,
                                                 PluginConfig config);

// The handshake and the shape of the descriptor. Throws PluginRefused.
void check_descriptor(const blade_plugin_descriptor *d);

}  // namespace blade
