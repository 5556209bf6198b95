// Documents the daemon keeps and republishes whole whenever they change,
// named by topic (e.g. "http.rules", the compiled HTTP fault rule set). The
// config stream route and plugins (host API subscribe, ABI 1.5) follow them.
//
// Each subscriber gets the current document when it subscribes, then every
// later one, in order, one call at a time: a topic's publishes are
// serialised, and its listeners run on the publishing thread. A listener
// must return quickly (queue or swap a pointer) and must not subscribe or
// unsubscribe from inside the call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace blade {

class TopicHub {
 public:
  using Document = std::shared_ptr<const std::string>;
  using Listener = std::function<void(const std::string &topic, const Document &doc)>;

  // Ends its subscription when destroyed or reset: once reset() returns, the
  // listener is not running and is never called again.
  class Subscription {
   public:
    Subscription() = default;
    Subscription(TopicHub *hub, std::uint64_t id) : hub_(hub), id_(id) {}
    Subscription(Subscription &&o) noexcept
        : hub_(std::exchange(o.hub_, nullptr)), id_(std::exchange(o.id_, 0)) {}
    Subscription &operator=(Subscription &&o) noexcept;
    Subscription(const Subscription &) = delete;
    Subscription &operator=(const Subscription &) = delete;
    ~Subscription() { reset(); }
    void reset();
    explicit operator bool() const { return hub_ != nullptr; }
    std::uint64_t id() const { return id_; }

   private:
    TopicHub *hub_ = nullptr;
    std::uint64_t id_ = 0;
  };

  TopicHub() = default;
  TopicHub(const TopicHub &) = delete;
  TopicHub &operator=(const TopicHub &) = delete;

  // Makes `doc` the topic's document (declaring the topic on first use) and
  // hands it to every subscriber before returning.
  void publish(const std::string &topic, std::string doc);
  // The topic's document; null for a topic never published.
  Document current(const std::string &topic) const;
  // Calls `listener` with the current document before returning, then after
  // every publish. An empty Subscription (false) for a topic never published.
  Subscription subscribe(const std::string &topic, Listener listener);
  // The same, ended by id (the C ABI's unsubscribe). Unknown ids are ignored.
  void unsubscribe(std::uint64_t id);
  // How many subscriptions `topic` has (0 for a topic never published).
  std::size_t subscriber_count(const std::string &topic) const;

 private:
  struct Topic {
    // Held while a document is handed out, so one topic's calls never
    // overlap and an unsubscribe waits for a running call.
    std::mutex deliver;
    Document doc;
    std::map<std::uint64_t, Listener> listeners;
  };

  std::shared_ptr<Topic> find(const std::string &topic) const;

  mutable std::mutex mutex_;  // guards topics_, owners_ and next_id_
  std::map<std::string, std::shared_ptr<Topic>> topics_;
  std::map<std::uint64_t, std::shared_ptr<Topic>> owners_;  // subscription id -> its topic
  std::uint64_t next_id_ = 1;
};

}  // namespace blade
