// Delivers experiment callbacks: the JSON of the experiment POSTed to the
// URL the user gave, with bounded retries and exponential backoff, on its
// own threads so a slow or dead receiver never holds up an experiment.
// The core knows no HTTP: the sender is given by the server.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "blade/core/experiment/scheduler.hpp"

namespace blade {

// Sends `body` to `url`; nullopt on success (2xx), else why it failed.
using CallbackSender =
    std::function<std::optional<std::string>(const std::string &url, const std::string &body)>;

struct CallbackPolicy {
  int max_attempts = 5;
  std::chrono::milliseconds first_backoff{500};  // doubled after each failure
  std::chrono::milliseconds max_backoff{30000};
};

class CallbackNotifier {
 public:
  CallbackNotifier(CallbackSender sender, CallbackPolicy policy = {});
  ~CallbackNotifier();

  // Queues a delivery; returns at once. First attempts to one URL are made in
  // the order queued; a retried delivery may land after a later one.
  void notify(const std::string &url, std::string body);
  // Drops pending retries and joins the threads.
  void stop();

 private:
  void attempt(const std::string &url, std::string body, int number,
               std::chrono::milliseconds backoff);

  CallbackSender sender_;
  CallbackPolicy policy_;
  Scheduler threads_{2};
};

// An http:// or https:// URL with a host; the check create runs on "callback".
bool is_valid_callback_url(const std::string &url);

}  // namespace blade
