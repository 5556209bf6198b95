// The routing table: (scope, target, action or alias) -> the plugin that
// serves it, plus the record of every plugin file seen (loaded or refused).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <tuple>
#include <vector>

#include "blade/core/plugin/loaded_plugin.hpp"
#include "blade/core/plugin/plugin_record.hpp"
#include "blade/core/spec/spec.hpp"

namespace blade {

class Registry {
 public:
  struct Resolved {
    std::shared_ptr<LoadedPlugin> plugin;
    const TargetSpec *target = nullptr;  // owned by plugin->spec()
    const ActionSpec *action = nullptr;
  };

  // Throws PluginRefused naming the clash if `spec` (of plugin `name`) would
  // reuse a loaded plugin's name or one of its (scope, target, action/alias).
  void check_conflicts(const std::string &name, const PluginSpec &spec) const;

  // Registers every action of the plugin; check_conflicts first.
  void add(std::shared_ptr<LoadedPlugin> plugin);
  void add_refused(PluginRecord record);
  // Drops the plugin and every route to it; returns it (null if unknown).
  // Calls in flight keep their own reference, so nothing is unloaded under
  // them.
  std::shared_ptr<LoadedPlugin> remove(const std::string &name);
  // Forgets the refused records (a reload tries those files again).
  void clear_refused();

  // Resolves an alias to its canonical action. nullopt if nothing serves it.
  std::optional<Resolved> resolve(const std::string &scope, const std::string &target,
                                  const std::string &action) const;

  std::shared_ptr<LoadedPlugin> find_plugin(const std::string &name) const;
  std::vector<std::shared_ptr<LoadedPlugin>> plugins() const;
  // Every plugin file seen, loaded then refused, each in the order met.
  std::vector<PluginRecord> records() const;
  std::size_t loaded_count() const;

 private:
  using Key = std::tuple<std::string, std::string, std::string>;  // scope, target, name
  struct Route {
    std::shared_ptr<LoadedPlugin> plugin;
    const TargetSpec *target;
    const ActionSpec *action;
  };

  std::optional<std::string> conflict_locked(const std::string &name, const PluginSpec &spec) const;

  mutable std::shared_mutex mutex_;
  std::vector<std::shared_ptr<LoadedPlugin>> plugins_;
  std::vector<PluginRecord> refused_;
  std::map<Key, Route> routes_;  // canonical names and aliases alike
};

// The record of a loaded plugin.
PluginRecord record_of(const LoadedPlugin &plugin);

}  // namespace blade
