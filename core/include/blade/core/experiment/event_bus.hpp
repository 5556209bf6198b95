// The in-process event bus: every persisted status change is published here
// (after the store has it), and the HTTP layer streams it. Recent events are
// kept so a client can resume from the last id it saw.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace blade {

// An event's data is JSON text shared, not copied, by everyone who sends it
// on: for an experiment it is the very text of the response and callback.
using JsonText = std::shared_ptr<const std::string>;

struct Event {
  std::uint64_t id = 0;  // increasing from 1 within one daemon run
  std::string type;      // "experiment", "preparation", "plugin"
  JsonText data;         // one line of JSON, never null
  // Set on an experiment event that reports a failed executor call (a failed
  // create, a failed destroy attempt, a forced destroy whose rollback
  // failed): that executor's name. The service sets it; it knows.
  std::string failed_executor;
};

class EventBus {
 public:
  using Listener = std::function<void(const Event &)>;

  // Unsubscribes when destroyed.
  class Subscription {
   public:
    Subscription() = default;
    Subscription(EventBus *bus, std::uint64_t id) : bus_(bus), id_(id) {}
    Subscription(Subscription &&o) noexcept : bus_(std::exchange(o.bus_, nullptr)), id_(o.id_) {}
    Subscription &operator=(Subscription &&o) noexcept;
    ~Subscription() { reset(); }
    void reset();

   private:
    EventBus *bus_ = nullptr;
    std::uint64_t id_ = 0;
  };

  explicit EventBus(std::size_t history = 1024) : history_limit_(history) {}

  // Listeners run on the publishing thread and must not block.
  std::uint64_t publish(std::string type, JsonText data, std::string failed_executor = {});
  // For events built as JSON values (plugins, preparations): dumped once.
  std::uint64_t publish(std::string type, const nlohmann::json &data);
  Subscription subscribe(Listener listener);
  // Kept events with id > last_id, oldest first.
  std::vector<Event> since(std::uint64_t last_id) const;

 private:
  void unsubscribe(std::uint64_t id);

  mutable std::mutex mutex_;
  std::uint64_t next_event_ = 1;
  std::uint64_t next_listener_ = 1;
  std::size_t history_limit_;
  std::deque<Event> history_;
  std::map<std::uint64_t, Listener> listeners_;
};

}  // namespace blade
