// A running proxy's live counters, handed to the host once a second while
// they change (the host shows them in /metrics and with the experiment).
// An asio timer on the proxy's io_context, so it costs no thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "fault_engine.hpp"

namespace blade::http {

class CounterReporter {
 public:
  using Report = std::function<void(const std::string &counters_json)>;
  // Reports at once, then every `period` when the figures changed.
  CounterReporter(boost::asio::io_context &io, std::shared_ptr<const FaultEngine> engine,
                  Report report, std::chrono::milliseconds period = std::chrono::seconds(1));
  // Stops the timer; once it returns, `report` is not running and is never
  // called again. Must not be called from an io_context thread.
  ~CounterReporter();
  CounterReporter(const CounterReporter &) = delete;
  CounterReporter &operator=(const CounterReporter &) = delete;

 private:
  struct Loop;
  std::shared_ptr<Loop> loop_;
};

}  // namespace blade::http
