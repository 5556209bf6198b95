// The proxies one plugin instance runs, by experiment uid, and the event
// loop they share. An experiment's proxy lives only in the process that
// created it: after a daemon restart its destroy finds none here (and
// reports it already gone).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <blade/plugin.hpp>

#include "counter_reporter.hpp"
#include "fault_engine.hpp"
#include "io_pool.hpp"
#include "proxy_server.hpp"

namespace blade::http {

// One experiment's proxy. Members are torn down in reverse: the rule-set
// subscription first (no update after), then the counters, then the server.
struct RunningProxy {
  std::shared_ptr<FaultEngine> engine;
  std::shared_ptr<ProxyServer> server;
  std::unique_ptr<CounterReporter> reporter;
  // The rule-set subscription (none for delay and abort).
  sdk::TopicSubscription rules;

  RunningProxy() = default;
  RunningProxy(const RunningProxy &) = delete;
  RunningProxy &operator=(const RunningProxy &) = delete;
  // Closes the proxy at once if it was not stopped before.
  ~RunningProxy();
  // Ends the subscription, stops accepting, drains for up to `drain` and
  // closes; returns how many connections were cut at the deadline.
  std::size_t stop(std::chrono::milliseconds drain);
};

class ProxyFleet {
 public:
  explicit ProxyFleet(std::size_t io_threads) : pool_(io_threads) {}
  ~ProxyFleet();
  ProxyFleet(const ProxyFleet &) = delete;
  ProxyFleet &operator=(const ProxyFleet &) = delete;

  boost::asio::io_context &io() { return pool_.context(); }
  // Keeps `proxy` as experiment `uid`'s; false (and nothing kept) when the
  // uid already has one.
  bool add(const std::string &uid, std::unique_ptr<RunningProxy> proxy);
  // Takes experiment `uid`'s proxy out; null when this instance runs none.
  std::unique_ptr<RunningProxy> take(const std::string &uid);

 private:
  // Declared first, destroyed last: the proxies stop while it still runs.
  IoPool pool_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<RunningProxy>> running_;
};

}  // namespace blade::http
