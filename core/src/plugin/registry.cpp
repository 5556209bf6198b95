#include "blade/core/plugin/registry.hpp"

#include <algorithm>
#include <mutex>

#include <fmt/format.h>

namespace blade {

PluginRecord record_of(const LoadedPlugin &plugin) {
  PluginRecord r;
  r.name = plugin.name();
  r.version = plugin.version();
  r.abi = plugin.abi();
  r.path = plugin.path();
  r.status = PluginRecord::Status::Loaded;
  r.configured = plugin.configured();
  r.config_schema = plugin.config_schema();
  for (const TargetSpec &t : plugin.spec().items)
    for (const ActionSpec &a : t.actions)
      r.targets.push_back(t.target + " " + a.name);
  return r;
}

std::optional<std::string> Registry::conflict_locked(const std::string &name,
                                                     const PluginSpec &spec) const {
  for (const auto &p : plugins_) {
    if (p->name() == name) {
      return fmt::format("duplicate plugin name '{}' (already loaded from {})", name,
                         p->path().string());
    }
  }
  std::optional<std::string> clash;
  for_each_route_name(spec, [&](const TargetSpec &t, const ActionSpec &, const std::string &n) {
    if (clash) return;
    auto it = routes_.find(Key{t.scope, t.target, n});
    if (it != routes_.end()) {
      clash =
          fmt::format("duplicate target/action '{} {}' (scope {}): already served by plugin '{}'",
                      t.target, n, t.scope, it->second.plugin->name());
    }
  });
  return clash;
}

void Registry::check_conflicts(const std::string &name, const PluginSpec &spec) const {
  std::shared_lock lock(mutex_);
  if (auto clash = conflict_locked(name, spec)) throw PluginRefused(*clash, name);
}

void Registry::add(std::shared_ptr<LoadedPlugin> plugin) {
  std::unique_lock lock(mutex_);
  // Checked again under the write lock: two loads may have raced.
  if (auto clash = conflict_locked(plugin->name(), plugin->spec()))
    throw PluginRefused(*clash, plugin->name());
  for_each_route_name(plugin->spec(),
                      [&](const TargetSpec &t, const ActionSpec &a, const std::string &n) {
                        routes_[Key{t.scope, t.target, n}] = Route{plugin, &t, &a};
                      });
  plugins_.push_back(std::move(plugin));
}

std::shared_ptr<LoadedPlugin> Registry::remove(const std::string &name) {
  std::unique_lock lock(mutex_);
  auto it = std::find_if(plugins_.begin(), plugins_.end(),
                         [&](const auto &p) { return p->name() == name; });
  if (it == plugins_.end()) return nullptr;
  auto plugin = *it;
  plugins_.erase(it);
  std::erase_if(routes_, [&](const auto &kv) { return kv.second.plugin == plugin; });
  return plugin;
}

void Registry::clear_refused() {
  std::unique_lock lock(mutex_);
  refused_.clear();
}

void Registry::add_refused(PluginRecord record) {
  std::unique_lock lock(mutex_);
  refused_.push_back(std::move(record));
}

std::optional<Registry::Resolved> Registry::resolve(const std::string &scope,
                                                    const std::string &target,
                                                    const std::string &action) const {
  std::shared_lock lock(mutex_);
  auto it = routes_.find(Key{scope, target, action});
  if (it == routes_.end()) return std::nullopt;
  return Resolved{it->second.plugin, it->second.target, it->second.action};
}

std::shared_ptr<LoadedPlugin> Registry::find_plugin(const std::string &name) const {
  std::shared_lock lock(mutex_);
  for (const auto &p : plugins_)
    if (p->name() == name) return p;
  return nullptr;
}

std::vector<std::shared_ptr<LoadedPlugin>> Registry::plugins() const {
  std::shared_lock lock(mutex_);
  return plugins_;
}

std::vector<PluginRecord> Registry::records() const {
  std::shared_lock lock(mutex_);
  std::vector<PluginRecord> out;
  for (const auto &p : plugins_)
    out.push_back(record_of(*p));
  out.insert(out.end(), refused_.begin(), refused_.end());
  return out;
}

std::size_t Registry::loaded_count() const {
  std::shared_lock lock(mutex_);
  return plugins_.size();
}

}  // namespace blade
