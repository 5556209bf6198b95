#include "blade/core/plugin/plugin_reload.hpp"

#include <algorithm>
#include <set>

#include "blade/core/model/log.hpp"
#include "blade/core/plugin/plugin_loader.hpp"

namespace blade {

ReloadReport reload_plugins(const std::vector<std::filesystem::path> &files,
                            const HostSettings &settings, Registry &registry,
                            const std::function<bool(const std::string &)> &in_use) {
  ReloadReport report;
  const std::set<std::filesystem::path> present(files.begin(), files.end());

  // Loaded plugins whose file is the same stay as they are.
  std::set<std::filesystem::path> unchanged;
  for (const auto &plugin : registry.plugins()) {
    const bool gone = !present.count(plugin->path());
    const bool changed = !gone && file_identity(plugin->path()) != plugin->file_id();
    if (!gone && !changed) {
      unchanged.insert(plugin->path());
      continue;
    }
    if (in_use(plugin->name())) {
      // Its experiments still need its destroy; a changed file is picked up
      // by a reload after they end.
      report.kept.push_back({plugin->name(), gone ? "file removed, but experiments still use it"
                                                  : "file changed, but experiments still use it"});
      unchanged.insert(plugin->path());
      continue;
    }
    registry.remove(plugin->name());
    report.unloaded.push_back(plugin->name());
    log::info("plugin unloaded",
              {{"plugin", plugin->name()}, {"reason", gone ? "file removed" : "file changed"}});
  }

  registry.clear_refused();
  std::vector<std::filesystem::path> to_load;
  for (const auto &file : files)
    if (!unchanged.count(file)) to_load.push_back(file);
  const auto before = registry.plugins();
  load_plugins(to_load, settings, registry);
  for (const auto &plugin : registry.plugins()) {
    if (std::find(before.begin(), before.end(), plugin) == before.end())
      report.loaded.push_back(plugin->name());
  }
  for (const auto &record : registry.records())
    if (record.status == PluginRecord::Status::Refused) report.refused.push_back(record);
  return report;
}

}  // namespace blade
