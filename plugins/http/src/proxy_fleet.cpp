#include "proxy_fleet.hpp"

namespace blade::http {

RunningProxy::~RunningProxy() { stop(std::chrono::milliseconds(0)); }

std::size_t RunningProxy::stop(std::chrono::milliseconds drain) {
  rules.reset();
  reporter.reset();
  return server ? server->stop(drain) : 0;
}

ProxyFleet::~ProxyFleet() {
  // The instance is shutting down: its proxies close now (the host keeps
  // their experiments, and a later destroy finds them already gone).
  std::map<std::string, std::unique_ptr<RunningProxy>> running;
  {
    std::lock_guard lock(mu_);
    running.swap(running_);
  }
  running.clear();
}

bool ProxyFleet::add(const std::string &uid, std::unique_ptr<RunningProxy> proxy) {
  std::lock_guard lock(mu_);
  return running_.try_emplace(uid, std::move(proxy)).second;
}

std::unique_ptr<RunningProxy> ProxyFleet::take(const std::string &uid) {
  std::lock_guard lock(mu_);
  auto it = running_.find(uid);
  if (it == running_.end()) return nullptr;
  auto proxy = std::move(it->second);
  running_.erase(it);
  return proxy;
}

}  // namespace blade::http
