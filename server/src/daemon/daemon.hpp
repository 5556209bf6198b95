// bladed's parts, built in the start order of docs/design.md: store -> plugins ->
// external fallback -> scheduler and service -> policies -> recovery.
// Destroyed in reverse, so no job outlives what it uses.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <vector>

#include "blade/core/experiment/callback_notifier.hpp"
#include "blade/core/experiment/event_bus.hpp"
#include "blade/core/experiment/experiment_service.hpp"
#include "blade/core/experiment/scheduler.hpp"
#include "blade/core/external/external_executor.hpp"
#include "blade/core/plugin/executor_router.hpp"
#include "blade/core/plugin/live_counters.hpp"
#include "blade/core/plugin/plugin_reload.hpp"
#include "blade/core/plugin/topic_hub.hpp"
#include "blade/core/plugin/registry.hpp"
#include "blade/core/policy/policy_service.hpp"
#include "blade/core/store/store.hpp"
#include "config.hpp"

namespace blade::server {

class Daemon {
 public:
  // Opens the store (a clear error if it cannot be used), loads plugins and
  // the external specs, and starts the workers. Does not recover yet.
  explicit Daemon(const Config &config);
  ~Daemon();

  Store &store() { return *store_; }
  Registry &registry() { return registry_; }
  EventBus &events() { return events_; }
  // Documents republished whole on change (the compiled HTTP fault rules).
  TopicHub &topics() { return topics_; }
  // The live counters plugins report for running experiments (ABI 1.5).
  const LiveCounters &counters() const { return counters_; }
  ExperimentService &service() { return *service_; }
  // The HTTP fault policies; publishes their compiled rules on topics().
  // Its start() runs with recovery, before the routes serve.
  PolicyService &policies() { return *policies_; }
  // What serves each (scope, target, action), as create chooses it.
  const ExecutorRouter &router() const { return *router_; }
  std::size_t plugins_found() const { return plugins_found_; }

  // Loads plugin files new or changed in the plugin dirs and drops those
  // removed, unless experiments still need them; announces each change as a
  // "plugin" event. Thread-safe (POST /v1/plugins/reload, SIGHUP).
  ReloadReport reload_plugins();

  // What an idle daemon holds only because it once needed it: SQLite's
  // page caches, the free heap, and the code pages startup touched (see
  // code_pages.hpp). All of it comes back on use.
  void release_memory();

 private:
  std::unique_ptr<Store> store_;
  // Before the registry: plugins' subscriptions end, and their last
  // counters reports arrive, before these go.
  TopicHub topics_;
  LiveCounters counters_;
  Registry registry_;
  std::unique_ptr<ExternalCatalog> external_;
  std::unique_ptr<ExecutorRouter> router_;
  EventBus events_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<CallbackNotifier> callbacks_;
  std::unique_ptr<ExperimentService> service_;
  // After the store, the scheduler (its expiry timers) and the topics.
  std::unique_ptr<PolicyService> policies_;
  std::atomic<std::size_t> plugins_found_{0};
  std::vector<std::filesystem::path> plugin_dirs_;
  HostSettings host_settings_;
  std::mutex reload_mutex_;  // one reload at a time
  // Where plugins' fault_ended reports go: the service once it exists, and
  // nowhere after it is gone (plugin threads may outlive it briefly).
  std::atomic<ExperimentService *> fault_sink_{nullptr};
};

}  // namespace blade::server
