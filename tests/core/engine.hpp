// The core engine assembled for tests as bladed assembles it: a real SQLite
// file, real plugins copied from the build, the scheduler and the service.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../support/eventually.hpp"
#include "../support/temp_dir.hpp"
#include "blade/core/experiment/callback_notifier.hpp"
#include "blade/core/experiment/event_bus.hpp"
#include "blade/core/experiment/experiment_service.hpp"
#include "blade/core/experiment/scheduler.hpp"
#include "blade/core/plugin/executor_router.hpp"
#include "blade/core/plugin/plugin_loader.hpp"
#include "blade/core/plugin/registry.hpp"
#include "blade/core/store/store.hpp"

namespace blade::test {

inline ServiceSettings fast_settings() {
  ServiceSettings s;
  s.sync_wait = std::chrono::seconds(20);
  s.call_deadline = std::chrono::seconds(20);
  s.destroy_retry_first = std::chrono::milliseconds(100);
  s.destroy_retry_max = std::chrono::milliseconds(400);
  return s;
}

class Engine {
 public:
  // `plugins`: file names under the test plugin dir or the built plugin dir.
  // `external` and `routing`: the external fallback, routed as bladed routes.
  explicit Engine(const std::vector<std::string> &plugins,
                  ServiceSettings settings = fast_settings(), CallbackSender sender = {},
                  CallbackPolicy policy = {}, const std::filesystem::path &db = {},
                  const ExternalCatalog *external = nullptr, RouterSettings routing = {})
      : db_(db.empty() ? dir / "blade.db" : db) {
    std::filesystem::create_directories(dir / "plugins");
    for (const auto &name : plugins) {
      std::filesystem::path from = std::filesystem::path(BLADE_TEST_PLUGIN_DIR) / name;
      if (!std::filesystem::exists(from))
        from = std::filesystem::path(BLADE_BUILT_PLUGIN_DIR) / name;
      std::filesystem::copy_file(from, dir / "plugins" / name);
      std::filesystem::permissions(dir / "plugins" / name, std::filesystem::perms(0755));
    }
    store = std::make_unique<Store>(db_);
    load_plugins(discover_plugin_files({dir / "plugins"}), {"test", dir / "state"}, registry);
    scheduler = std::make_unique<Scheduler>(4);
    if (sender) callbacks = std::make_unique<CallbackNotifier>(std::move(sender), policy);
    router = std::make_unique<ExecutorRouter>(registry, external, std::move(routing));
    service = std::make_unique<ExperimentService>(*store, *router, *scheduler, events,
                                                  callbacks.get(), settings);
  }
  ~Engine() {
    // Jobs reference the service and the store: stop them first.
    scheduler->stop();
    if (callbacks) callbacks->stop();
  }

  TempDir dir{"blade-engine"};
  std::filesystem::path db_;
  std::unique_ptr<Store> store;
  Registry registry;
  std::unique_ptr<ExecutorRouter> router;
  EventBus events;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<CallbackNotifier> callbacks;
  std::unique_ptr<ExperimentService> service;
};

}  // namespace blade::test
