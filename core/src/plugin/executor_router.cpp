#include "blade/core/plugin/executor_router.hpp"

#include <set>
#include <tuple>

#include <fmt/format.h>

#include "blade/core/model/error.hpp"
#include "blade/core/spec/spec_json.hpp"

namespace blade {
namespace {

constexpr std::string_view kInProcessPrefix = "inprocess:";
constexpr std::string_view kExternalPrefix = "external:";

}  // namespace

std::string executor_name(ExecutorKind kind, std::string_view id) {
  std::string out(kind == ExecutorKind::InProcess ? kInProcessPrefix : kExternalPrefix);
  out += id;
  return out;
}

std::optional<ExecutorName> parse_executor_name(std::string_view name) {
  for (auto kind : {ExecutorKind::InProcess, ExecutorKind::External}) {
    const std::string_view prefix =
        kind == ExecutorKind::InProcess ? kInProcessPrefix : kExternalPrefix;
    if (name.size() > prefix.size() && name.substr(0, prefix.size()) == prefix)
      return ExecutorName{kind, std::string(name.substr(prefix.size()))};
  }
  return std::nullopt;
}

// Defined here so that the naming is written once.
std::string PluginExecutor::name() const {
  return executor_name(ExecutorKind::InProcess, plugin_->name());
}

ExecutorRouter::ExecutorRouter(const Registry &registry, const ExternalCatalog *external,
                               RouterSettings settings)
    : registry_(registry), external_(external), settings_(std::move(settings)) {}

std::optional<Route> ExecutorRouter::from_plugins(const std::string &scope,
                                                  const std::string &target,
                                                  const std::string &action) const {
  auto r = registry_.resolve(scope, target, action);
  if (!r) return std::nullopt;
  return Route{std::make_shared<PluginExecutor>(r->plugin), r->target, r->action};
}

std::optional<Route> ExecutorRouter::from_external(const std::string &scope,
                                                   const std::string &target,
                                                   const std::string &action) const {
  if (!external_) return std::nullopt;
  auto entry = external_->resolve(scope, target, action);
  if (!entry) return std::nullopt;
  return Route{std::make_shared<ExternalExecutor>(settings_.external, entry->program,
                                                  entry->action->process_hang),
               entry->target, entry->action};
}

Route ExecutorRouter::resolve(const std::string &scope, const std::string &target,
                              const std::string &action) const {
  if (settings_.mode == ExecMode::External) {
    if (auto r = from_external(scope, target, action)) return std::move(*r);
  }
  if (auto r = from_plugins(scope, target, action)) return std::move(*r);
  if (auto r = from_external(scope, target, action)) return std::move(*r);
  throw Error(ErrorCode::NotFound,
              fmt::format("no executor serves '{} {}' in scope {}", target, action, scope),
              {{"action", fmt::format("no plugin or external spec serves {} {}", target, action)}});
}

std::shared_ptr<Executor> ExecutorRouter::executor_for(const Experiment &e) const {
  auto name = parse_executor_name(e.executor);
  if (!name) return nullptr;
  if (name->kind == ExecutorKind::InProcess) {
    auto plugin = registry_.find_plugin(name->id);
    return plugin ? std::make_shared<PluginExecutor>(plugin) : nullptr;
  }
  if (!external_) return nullptr;
  // The program is the one stored, even if the spec files changed since:
  // destroy must reach what create ran.
  auto entry = external_->resolve(e.scope, e.target, e.action);
  const bool hang = entry && entry->action->process_hang;
  return std::make_shared<ExternalExecutor>(settings_.external, name->id, hang);
}

std::vector<CatalogEntry> ExecutorRouter::catalogue() const {
  // Every canonical (scope, target, action) either source declares, in the
  // order plugins then spec files; each is then routed as create routes it,
  // so the executor listed is the one a create would run.
  std::vector<std::tuple<std::string, std::string, std::string>> keys;
  // Held while the keys are read: a reload cannot unload a spec under them.
  const auto plugins = registry_.plugins();
  for (const auto &plugin : plugins)
    for (const auto &t : plugin->spec().items)
      for (const auto &a : t.actions)
        keys.emplace_back(t.scope, t.target, a.name);
  if (external_)
    for (const auto &[program, spec] : external_->specs())
      for (const auto &t : spec->items)
        for (const auto &a : t.actions)
          keys.emplace_back(t.scope, t.target, a.name);

  std::vector<CatalogEntry> out;
  std::set<std::tuple<std::string, std::string, std::string, std::string>> listed;
  for (const auto &[scope, target, action] : keys) {
    std::optional<Route> route;
    try {
      route = resolve(scope, target, action);
    } catch (const Error &) {
      continue;  // its plugin was removed since the keys were read
    }
    // `route` holds its executor, and so its plugin, while the spec is copied.
    std::string name = route->executor->name();
    if (!listed.emplace(route->target->scope, route->target->target, route->action->name, name)
             .second)
      continue;
    CatalogEntry entry{.target = *route->target, .action = *route->action,
                       .executor = std::move(name)};
    entry.target.actions.clear();  // `action` is the one this entry is for
    out.push_back(std::move(entry));
  }
  return out;
}

nlohmann::json catalogue_json(const std::vector<CatalogEntry> &entries) {
  nlohmann::json items = nlohmann::json::array();
  for (const auto &e : entries)
    items.push_back(spec_entry(e.target, e.action, e.executor));
  return items;
}

}  // namespace blade
