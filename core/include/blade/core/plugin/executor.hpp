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
  // A plugin called in this process: its calls may run on the caller's
  // thread (an external binary's minutes-long run goes to the scheduler, so
  // a synchronous caller can stop waiting for it).
  virtual bool in_process() const { return false; }
  // The executor promises that a create takes no step leaving anything
  // behind before its first write-ahead record (save_restore), so the store
  // needs no row before the call: recovery has nothing to undo until then.
  virtual bool writes_ahead() const { return false; }
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
  bool in_process() const override { return true; }
  bool writes_ahead() const override { return plugin_->writes_ahead(); }

 private:
  std::shared_ptr<LoadedPlugin> plugin_;
};

}  // namespace blade
