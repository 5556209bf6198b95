#include "blade/core/experiment/event_bus.hpp"

#include "blade/core/model/log.hpp"

namespace blade {

EventBus::Subscription &EventBus::Subscription::operator=(Subscription &&o) noexcept {
  if (this != &o) {
    reset();
    bus_ = std::exchange(o.bus_, nullptr);
    id_ = o.id_;
  }
  return *this;
}

void EventBus::Subscription::reset() {
  if (bus_) bus_->unsubscribe(id_);
  bus_ = nullptr;
}

std::uint64_t EventBus::publish(std::string type, const nlohmann::json &data) {
  return publish(std::move(type),
                 std::make_shared<const std::string>(
                     data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
}

std::uint64_t EventBus::publish(std::string type, JsonText data, std::string failed_executor) {
  // Delivered under the lock so every listener sees events in id order.
  std::lock_guard lock(mutex_);
  Event e{next_event_++, std::move(type), std::move(data), std::move(failed_executor)};
  for (auto &[id, listener] : listeners_) {
    try {
      listener(e);
    } catch (const std::exception &ex) {
      log::warn("event listener failed", {{"error", ex.what()}});
    }
  }
  history_.push_back(std::move(e));
  if (history_.size() > history_limit_) history_.pop_front();
  return history_.back().id;
}

EventBus::Subscription EventBus::subscribe(Listener listener) {
  std::lock_guard lock(mutex_);
  std::uint64_t id = next_listener_++;
  listeners_.emplace(id, std::move(listener));
  return Subscription(this, id);
}

std::vector<Event> EventBus::since(std::uint64_t last_id) const {
  std::lock_guard lock(mutex_);
  std::vector<Event> out;
  for (const auto &e : history_)
    if (e.id > last_id) out.push_back(e);
  return out;
}

void EventBus::unsubscribe(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  listeners_.erase(id);
}

}  // namespace blade
