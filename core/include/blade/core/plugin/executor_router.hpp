// Which executor serves (scope, target, action): a loaded plugin, called
// in-process, or a chaosblade-exec binary, run as a child. The one place
// that decides it, for create (the service), for the spec catalogue
// (GET /v1/specs) and for the CLI's offline help, so the three never
// disagree. It also owns the executor names stored with each experiment,
// "inprocess:<plugin>" and "external:<program>".
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "blade/core/external/external_executor.hpp"
#include "blade/core/model/experiment.hpp"
#include "blade/core/plugin/executor.hpp"
#include "blade/core/plugin/registry.hpp"
#include "blade/core/spec/spec.hpp"

namespace blade {

// InProcess: plugins first, the binaries for what no plugin serves.
// External: the binaries first, plugins for what no spec file serves.
enum class ExecMode { InProcess, External };

enum class ExecutorKind { InProcess, External };

// A parsed executor name.
struct ExecutorName {
  ExecutorKind kind = ExecutorKind::InProcess;
  std::string id;  // the plugin's name, or the program under the bin dir
};

// "inprocess:<id>" or "external:<id>".
std::string executor_name(ExecutorKind kind, std::string_view id);
// nullopt for a name of neither form or with an empty id.
std::optional<ExecutorName> parse_executor_name(std::string_view name);

// What a create of (scope, target, action) runs, with the spec it is
// checked against. `target` and `action` stay valid while `executor` lives:
// a plugin's spec belongs to the plugin, which the executor keeps loaded;
// an external spec belongs to the catalogue, which outlives the router.
struct Route {
  std::shared_ptr<Executor> executor;
  const TargetSpec *target = nullptr;
  const ActionSpec *action = nullptr;
};

// One (scope, target, action) of the catalogue. Copies, so an entry stays
// valid after its plugin is unloaded by a reload.
struct CatalogEntry {
  TargetSpec target;  // its `actions` left empty: `action` is the one meant
  ActionSpec action;
  std::string executor;  // the name create would store
};

// What the experiment service needs from routing; tests inject fakes.
// Implementations are called from many threads at once.
class ExecutorSource {
 public:
  virtual ~ExecutorSource() = default;
  // `action` may be an alias. Throws Error(NotFound) when nothing serves it.
  virtual Route resolve(const std::string &scope, const std::string &target,
                        const std::string &action) const = 0;
  // The executor an experiment was created with (by its stored name), or
  // null when that executor is gone (a plugin since removed).
  virtual std::shared_ptr<Executor> executor_for(const Experiment &e) const = 0;
  // Every (scope, target, action) served, each once, with the executor
  // resolve() would choose for it.
  virtual std::vector<CatalogEntry> catalogue() const = 0;
};

struct RouterSettings {
  ExecMode mode = ExecMode::InProcess;
  // How external executors run (bin dir, deadlines).
  ExternalSettings external;
};

// The real routing, over the loaded plugins and the optional external
// fallback. Holds references: `registry` and `external` must outlive it.
class ExecutorRouter final : public ExecutorSource {
 public:
  explicit ExecutorRouter(const Registry &registry, const ExternalCatalog *external = nullptr,
                          RouterSettings settings = {});

  Route resolve(const std::string &scope, const std::string &target,
                const std::string &action) const override;
  std::shared_ptr<Executor> executor_for(const Experiment &e) const override;
  std::vector<CatalogEntry> catalogue() const override;

 private:
  std::optional<Route> from_plugins(const std::string &scope, const std::string &target,
                                    const std::string &action) const;
  std::optional<Route> from_external(const std::string &scope, const std::string &target,
                                     const std::string &action) const;

  const Registry &registry_;
  const ExternalCatalog *external_;
  RouterSettings settings_;
};

// The catalogue in GET /v1/specs's shape: one spec_entry per entry.
nlohmann::json catalogue_json(const std::vector<CatalogEntry> &entries);

}  // namespace blade
