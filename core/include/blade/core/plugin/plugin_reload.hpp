// Reloading plugins without a restart (POST /v1/plugins/reload, SIGHUP):
// the registry is brought in line with the plugin files now on disk. A
// plugin still needed by an experiment is never unloaded under it.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "blade/core/plugin/loaded_plugin.hpp"
#include "blade/core/plugin/plugin_record.hpp"
#include "blade/core/plugin/registry.hpp"

namespace blade {

struct ReloadReport {
  struct Kept {
    std::string name;
    std::string reason;
  };
  std::vector<std::string> loaded;    // newly loaded, or loaded again from a changed file
  std::vector<std::string> unloaded;  // file gone or changed, and no experiment needs it
  std::vector<Kept> kept;             // file gone or changed, but an experiment needs it
  std::vector<PluginRecord> refused;  // files that failed to load this time
};

// `files` are the plugin files now present (discover_plugin_files). A loaded
// plugin whose file is gone or changed is dropped unless `in_use(name)`;
// files not loaded (new, changed, or refused before) are loaded. The caller
// makes sure no experiment starts using a plugin while this runs.
ReloadReport reload_plugins(const std::vector<std::filesystem::path> &files,
                            const HostSettings &settings, Registry &registry,
                            const std::function<bool(const std::string &plugin)> &in_use);

}  // namespace blade
