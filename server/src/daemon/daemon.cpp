#include "daemon.hpp"

#include <malloc.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "blade/core/model/log.hpp"
#include "blade/core/plugin/plugin_loader.hpp"
#include "blade/core/plugin/protected_paths.hpp"
#include "build_info.hpp"
#include "code_pages.hpp"
#include "http/callback_sender.hpp"

namespace blade::server {
namespace {

// What bladed itself lives on (see daemon_protected_paths).
std::vector<std::string> protected_paths(const Config &config,
                                         const std::vector<std::filesystem::path> &plugin_dirs) {
  return daemon_protected_paths(config.sqlite_path, config.state_dir, plugin_dirs,
                                config.install_plugin_dir);
}

}  // namespace

Daemon::Daemon(const Config &config) {
  store_ = std::make_unique<Store>(config.sqlite_path);

  plugin_dirs_ = plugin_search_dirs(config.plugin_dirs, std::getenv("BLADE_PLUGIN_PATH"),
                                    config.install_plugin_dir);
  host_settings_ = {
      BLADE_VERSION, config.state_dir / "plugins",
      [this](const std::string &plugin, const std::string &uid, const std::string &reason) {
        if (auto *service = fault_sink_.load()) service->fault_ended(plugin, uid, reason);
      }};
  host_settings_.protected_paths = protected_paths(config, plugin_dirs_);
  host_settings_.plugin_configs = config.plugin_configs;  // a reload uses them as read here
  host_settings_.topics = &topics_;
  host_settings_.counters = &counters_;
  auto files = discover_plugin_files(plugin_dirs_);
  plugins_found_ = files.size();
  load_plugins(files, host_settings_, registry_);
  warn_unmatched_plugin_configs(host_settings_, registry_);

  ServiceSettings settings;
  settings.max_active = config.max_active;
  settings.sync_wait = std::chrono::seconds(config.sync_timeout);
  RouterSettings routing;
  routing.mode = config.exec_external ? ExecMode::External : ExecMode::InProcess;
  if (!config.chaosblade_home.empty()) {
    external_ = std::make_unique<ExternalCatalog>(
        ExternalCatalog::from_dir(config.chaosblade_home / "yaml"));
    routing.external.bin_dir = config.chaosblade_home / "bin";
    log::info("external fallback", {{"home", config.chaosblade_home.string()},
                                    {"spec_files", std::to_string(external_->size())}});
  }

  scheduler_ = std::make_unique<Scheduler>(static_cast<std::size_t>(config.workers));
  callbacks_ = std::make_unique<CallbackNotifier>(
      [](const std::string &url, const std::string &body) { return post_callback(url, body); });
  router_ = std::make_unique<ExecutorRouter>(registry_, external_.get(), routing);
  service_ = std::make_unique<ExperimentService>(*store_, *router_, *scheduler_, events_,
                                                 callbacks_.get(), settings);
  fault_sink_ = service_.get();
  policies_ = std::make_unique<PolicyService>(*store_, *scheduler_, topics_);
}

ReloadReport Daemon::reload_plugins() {
  std::lock_guard lock(reload_mutex_);
  auto files = discover_plugin_files(plugin_dirs_);
  auto report = service_->change_plugins([&](const auto &in_use) {
    return blade::reload_plugins(files, host_settings_, registry_, in_use);
  });
  plugins_found_ = files.size();
  for (const auto &name : report.unloaded)
    events_.publish("plugin", {{"name", name}, {"status", "unloaded"}});
  for (const auto &name : report.loaded) {
    auto plugin = registry_.find_plugin(name);
    events_.publish("plugin", {{"name", name},
                               {"status", "loaded"},
                               {"version", plugin ? plugin->version() : ""},
                               {"path", plugin ? plugin->path().string() : ""}});
  }
  log::info("plugins reloaded", {{"loaded", std::to_string(report.loaded.size())},
                                 {"unloaded", std::to_string(report.unloaded.size())},
                                 {"kept", std::to_string(report.kept.size())},
                                 {"refused", std::to_string(report.refused.size())}});
  return report;
}

void Daemon::release_memory() {
  store_->release_memory();
  ::malloc_trim(0);
  release_code_pages();
}

Daemon::~Daemon() {
  fault_sink_ = nullptr;
  // Jobs first (they use the service, the policies, the store and the
  // plugins), then callbacks, then the rest in reverse order of
  // construction: no policy expiry job runs once the policies go.
  if (scheduler_) scheduler_->stop();
  if (callbacks_) callbacks_->stop();
}

}  // namespace blade::server
