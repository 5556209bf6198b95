// bladed's parts, built in the order DESIGN.md gives: store -> plugins ->
// external fallback -> scheduler and service -> recovery. Destroyed in
// reverse, so no job outlives what it uses.
#pragma once

#include <memory>

#include "blade/core/callback_notifier.hpp"
#include "blade/core/event_bus.hpp"
#include "blade/core/experiment_service.hpp"
#include "blade/core/external_executor.hpp"
#include "blade/core/registry.hpp"
#include "blade/core/scheduler.hpp"
#include "blade/core/store.hpp"
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
  ExperimentService &service() { return *service_; }
  // The external fallback's specs; null without --chaosblade-home.
  const ExternalCatalog *external() const { return external_.get(); }
  std::size_t plugins_found() const { return plugins_found_; }

 private:
  std::unique_ptr<Store> store_;
  Registry registry_;
  std::unique_ptr<ExternalCatalog> external_;
  EventBus events_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<CallbackNotifier> callbacks_;
  std::unique_ptr<ExperimentService> service_;
  std::size_t plugins_found_ = 0;
};

}  // namespace blade::server
