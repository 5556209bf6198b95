#include "blade/core/plugin/topic_hub.hpp"

namespace blade {

TopicHub::Subscription &TopicHub::Subscription::operator=(Subscription &&o) noexcept {
  if (this != &o) {
    reset();
    hub_ = std::exchange(o.hub_, nullptr);
    id_ = std::exchange(o.id_, 0);
  }
  return *this;
}

void TopicHub::Subscription::reset() {
  if (hub_) hub_->unsubscribe(id_);
  hub_ = nullptr;
  id_ = 0;
}

std::shared_ptr<TopicHub::Topic> TopicHub::find(const std::string &topic) const {
  std::lock_guard lock(mutex_);
  auto it = topics_.find(topic);
  return it == topics_.end() ? nullptr : it->second;
}

void TopicHub::publish(const std::string &topic, std::string doc) {
  std::shared_ptr<Topic> t;
  {
    std::lock_guard lock(mutex_);
    auto &slot = topics_[topic];
    if (!slot) slot = std::make_shared<Topic>();
    t = slot;
  }
  auto shared = std::make_shared<const std::string>(std::move(doc));
  std::lock_guard deliver(t->deliver);
  t->doc = shared;
  for (auto &[id, listener] : t->listeners) {
    try {
      listener(topic, shared);
    } catch (...) {
      // One subscriber's failure must not keep the document from the rest.
    }
  }
}

TopicHub::Document TopicHub::current(const std::string &topic) const {
  auto t = find(topic);
  if (!t) return nullptr;
  std::lock_guard deliver(t->deliver);
  return t->doc;
}

TopicHub::Subscription TopicHub::subscribe(const std::string &topic, Listener listener) {
  auto t = find(topic);
  if (!t) return {};
  std::uint64_t id = 0;
  std::lock_guard deliver(t->deliver);
  {
    std::lock_guard lock(mutex_);
    id = next_id_++;
    owners_[id] = t;
  }
  // The first call is made under the same lock as publishes, so no document
  // published meanwhile can overtake it.
  try {
    listener(topic, t->doc);
  } catch (...) {
    std::lock_guard lock(mutex_);
    owners_.erase(id);
    throw;
  }
  t->listeners.emplace(id, std::move(listener));
  return Subscription(this, id);
}

std::size_t TopicHub::subscriber_count(const std::string &topic) const {
  auto t = find(topic);
  if (!t) return 0;
  std::lock_guard deliver(t->deliver);
  return t->listeners.size();
}

void TopicHub::unsubscribe(std::uint64_t id) {
  std::shared_ptr<Topic> t;
  {
    std::lock_guard lock(mutex_);
    auto it = owners_.find(id);
    if (it == owners_.end()) return;
    t = it->second;
    owners_.erase(it);
  }
  std::lock_guard deliver(t->deliver);
  t->listeners.erase(id);
}

}  // namespace blade
