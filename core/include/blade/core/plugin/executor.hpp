// What runs a fault: a loaded plugin called in-process through the C ABI,
// or a chaosblade-exec binary run as a child (the external fallback). The
// service sees only this interface.
#pragma once

#include <memory>
#include <string>

#include "blade/core/plugin/loaded_plugin.hpp"

namespace blade {

class Executor {
 public:
  virtual ~Executor() = default;
  // "inprocess:<plugin>" or "external:<binary>": stored with the experiment
  // (see executor_name() in executor_router.hpp).
  virtual std::string name() const = 0;
  virtual CallOutcome create(const PluginRequest &request, const CallOptions &options) = 0;
  // Works from request.flags and request.restore_json alone; idempotent.
  virtual CallOutcome destroy(const PluginRequest &request, const CallOptions &options) = 0;
  virtual CallOutcome dry_run(const PluginRequest &request, const CallOptions &options) = 0;
};

// Calls a loaded plugin; keeps it loaded while the executor lives.
class PluginExecutor final : public Executor {
 public:
  explicit PluginExecutor(std::shared_ptr<LoadedPlugin> plugin) : plugin_(std::move(plugin)) {}
  // "inprocess:<plugin>"; defined beside the rest of the naming
  // (executor_router.cpp).
  std::string name() const override;
  CallOutcome create(const PluginRequest &r, const CallOptions &o) override {
    return plugin_->create(r, o);
  }
  CallOutcome destroy(const PluginRequest &r, const CallOptions &o) override {
    return plugin_->destroy(r, o);
  }
  CallOutcome dry_run(const PluginRequest &r, const CallOptions &o) override {
    return plugin_->dry_run(r, o);
  }

 private:
  std::shared_ptr<LoadedPlugin> plugin_;
};

}  // namespace blade
