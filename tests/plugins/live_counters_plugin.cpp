// A test plugin for ABI 1.5 (topics and live counters), on the SDK's C++
// layer. Target `live`:
//  - follow --topic T: follows topic T; after each document its counters
//    are {"labels": {"docs": <every document so far, joined by "|">},
//    "counters": {"deliveries": <how many>}}, so a test reads back what was
//    delivered, in which order. destroy ends the subscription.
//  - count --rule R: a thread of its own reports {"labels": {"rule": R},
//    "counters": {"total_requests": n, "errors": 0}} with n growing every
//    10 ms until destroy, which stops it.
//  - bad [--then-fail]: reports a good text, then one breaking the rules;
//    its result says which the host took; --then-fail fails the create.
//  - leak --topic T: subscribes through the C table and never unsubscribes:
//    the host must end it once shutdown returned, before the code goes.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <blade/counters.hpp>
#include <blade/plugin.hpp>

namespace {

constexpr const char *kSpec = R"yaml(
version: v1
kind: plugin
items:
- target: live
  shortDesc: Topics and live counters (ABI 1.5) for tests
  scope: host
  actions:
  - action: follow
    shortDesc: Follow a topic, counting the documents
    flags:
    - name: topic
      desc: the topic to follow
      default: "test.topic"
  - action: count
    shortDesc: Count from a thread until destroyed
    flags:
    - name: rule
      desc: the rule label of the series
      default: "r/0"
  - action: bad
    shortDesc: Report counters that break the rules
    flags:
    - name: then-fail
      desc: fail the create after reporting
      type: bool
      default: "false"
  - action: leak
    shortDesc: Subscribe and never unsubscribe
    flags:
    - name: topic
      desc: the topic to follow
      default: "test.topic"
)yaml";

class Live {
 public:
  static constexpr bool concurrent_calls = true;

  explicit Live(blade::sdk::Host host) : host_(host) {}
  ~Live() {
    std::map<std::string, std::jthread> threads;
    {
      std::lock_guard lock(mu_);
      threads.swap(counting_);
    }
    // jthread: each stops and joins as the map goes.
  }

  blade::sdk::Outcome create(const blade::sdk::Request &req, blade::sdk::Call &) {
    const std::string uid(req.uid());
    const std::string action(req.action());
    if (action == "follow") {
      auto docs = std::make_shared<std::string>();
      auto n = std::make_shared<std::uint64_t>(0);
      auto sub = host_.subscribe(req.flag_or("topic", ""), [this, uid, docs, n](std::string_view json) {
        *docs += (docs->empty() ? "" : "|") + std::string(json);
        host_.report_counters(uid, blade::sdk::counters_json({{{{"docs", *docs}}, {{"deliveries", ++*n}}}}));
      });
      std::lock_guard lock(mu_);
      following_[uid] = std::move(sub);
    } else if (action == "count") {
      const std::string rule = req.flag_or("rule", "");
      auto host = host_;
      std::lock_guard lock(mu_);
      counting_[uid] = std::jthread([host, uid, rule](std::stop_token stop) {
        std::mutex m;
        std::condition_variable_any cv;
        for (std::uint64_t n = 1; !stop.stop_requested(); ++n) {
          host.report_counters(uid, blade::sdk::counters_json(
                                        {{{{"rule", rule}}, {{"total_requests", n}, {"errors", 0}}}}));
          std::unique_lock lk(m);
          cv.wait_for(lk, stop, std::chrono::milliseconds(10), [] { return false; });
        }
      });
    } else if (action == "bad") {
      const bool good = host_.report_counters(uid, R"({"series":[{"counters":{"errors":1}}]})");
      const bool bad = host_.report_counters(uid, R"({"series":[{"counters":{"Errors":1}}]})");
      if (req.flag_bool("then-fail")) throw blade::sdk::FailedPrecondition("failed after reporting");
      return {std::string(R"({"good":)") + (good ? "true" : "false") + R"(,"bad":)" +
                  (bad ? "true" : "false") + "}",
              "{}"};
    } else if (action == "leak") {
      const blade_host_api *api = host_.api();
      if (!BLADE_HAS_FUNC(api, subscribe)) throw blade::sdk::NotSupported("no topics here");
      const std::string topic = req.flag_or("topic", "");
      if (api->subscribe(host_.handle(), topic.c_str(), &Live::leaked, nullptr) == 0)
        throw blade::sdk::NotSupported("no topic " + topic);
    }
    return {"{}", "{}"};
  }

  void destroy(const blade::sdk::Request &req, blade::sdk::Call &) {
    const std::string uid(req.uid());
    blade::sdk::TopicSubscription ending;
    std::jthread stopping;
    {
      std::lock_guard lock(mu_);
      if (auto it = following_.find(uid); it != following_.end()) {
        ending = std::move(it->second);
        following_.erase(it);
      }
      if (auto it = counting_.find(uid); it != counting_.end()) {
        stopping = std::move(it->second);
        counting_.erase(it);
      }
    }
    // Both end here, outside the lock: the thread is joined (it reports no
    // more) and the subscription ended before destroy returns.
  }

 private:
  static void leaked(void *, const char *, const char *, std::size_t) { ++leaked_calls; }
  static inline std::atomic<int> leaked_calls{0};

  blade::sdk::Host host_;
  std::mutex mu_;
  std::map<std::string, std::jthread> counting_;
  // Last: ended first, while what their functions use still exists.
  std::map<std::string, blade::sdk::TopicSubscription> following_;
};

}  // namespace

BLADE_PLUGIN(Live, "live-counters", "1.0.0", kSpec)
