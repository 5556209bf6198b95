// bladed's Prometheus metrics (GET /metrics): experiments by status, active
// faults, the store's transactions and statements, create/destroy latency
// histograms, executor errors by plugin, HTTP
// requests by route and code, and the live counters plugins report for
// running experiments. Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "blade/core/experiment/event_bus.hpp"
#include "blade/core/plugin/live_counters.hpp"
#include "blade/core/store/store.hpp"

namespace blade::server {

class Metrics {
 public:
  // Listens on `events` for failed experiments (executor errors by plugin);
  // reads experiment counts from `store`, and plugins' live counters from
  // `counters` (when given; it must outlive this), when rendering.
  Metrics(Store &store, EventBus &events, const LiveCounters *counters = nullptr);
  ~Metrics();
  Metrics(const Metrics &) = delete;
  Metrics &operator=(const Metrics &) = delete;

  // `route` is the declared pattern ("/v1/experiments/{uid}"), never the raw
  // path, so the label set stays bounded.
  void observe_request(std::string_view method, std::string_view route, int status);
  // Wall time of a synchronous create / destroy call, as the client saw it.
  void observe_create(std::chrono::duration<double> latency);
  void observe_destroy(std::chrono::duration<double> latency);

  // The text exposition format, version 0.0.4.
  std::string render() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace blade::server
