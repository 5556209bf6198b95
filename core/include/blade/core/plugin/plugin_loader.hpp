// Discovery and loading of plugin files. A bad plugin is logged, recorded
// as refused with its reason, and skipped; the good ones are registered.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blade/core/plugin/loaded_plugin.hpp"
#include "blade/core/plugin/plugin_record.hpp"
#include "blade/core/plugin/registry.hpp"

namespace blade {

// The directories searched, in order: the configured ones, then each entry
// of BLADE_PLUGIN_PATH (colon-separated), then the install dir. Duplicates
// (same directory twice) are dropped, keeping the first.
std::vector<std::filesystem::path> plugin_search_dirs(
    const std::vector<std::filesystem::path> &configured, const char *env_plugin_path,
    const std::filesystem::path &install_dir);

// The *.so files directly in each dir, sorted by name within a dir, dirs in
// the given order. Missing dirs are skipped.
std::vector<std::filesystem::path> discover_plugin_files(
    const std::vector<std::filesystem::path> &dirs);

// Loads one file: file checks, dlopen, handshake, spec, then init. `registry`
// (if given) is asked about name and (target, action) clashes before init, so
// a refused plugin's code never starts. Throws PluginRefused.
std::shared_ptr<LoadedPlugin> load_plugin(const std::filesystem::path &path,
                                          const HostSettings &settings,
                                          const Registry *registry = nullptr);

// Loads every file, registering the good ones and recording the refused.
// Returns the number loaded.
std::size_t load_plugins(const std::vector<std::filesystem::path> &files,
                         const HostSettings &settings, Registry &registry);

// Warns (in the log) of every section of settings.plugin_configs for which
// `registry` has no plugin, loaded or refused: a typo, or a plugin to be
// installed later. Not an error, so the daemon still starts.
void warn_unmatched_plugin_configs(const HostSettings &settings, const Registry &registry);

}  // namespace blade
