#include "blade/core/experiment/callback_notifier.hpp"

#include <regex>

#include "blade/core/model/log.hpp"

namespace blade {

CallbackNotifier::CallbackNotifier(CallbackSender sender, CallbackPolicy policy)
    : sender_(std::move(sender)), policy_(policy) {}

CallbackNotifier::~CallbackNotifier() {
  stop();
}

void CallbackNotifier::stop() {
  threads_.stop();
}

void CallbackNotifier::notify(const std::string &url, std::string body) {
  if (!sender_) return;
  threads_.post(url, [this, url, body = std::move(body)]() mutable {
    attempt(url, std::move(body), 1, policy_.first_backoff);
  });
}

void CallbackNotifier::attempt(const std::string &url, std::string body, int number,
                               std::chrono::milliseconds backoff) {
  std::optional<std::string> failure;
  try {
    failure = sender_(url, body);
  } catch (const std::exception &e) {
    failure = e.what();
  }
  if (!failure) return;
  if (number >= policy_.max_attempts) {
    log::warn("callback abandoned",
              {{"url", url}, {"attempts", std::to_string(number)}, {"error", *failure}});
    return;
  }
  log::info("callback failed, will retry", {{"url", url},
                                            {"attempt", std::to_string(number)},
                                            {"retry_in_ms", std::to_string(backoff.count())},
                                            {"error", *failure}});
  auto next = std::min(backoff * 2, policy_.max_backoff);
  // The retry waits on a timer, not a sleeping thread.
  threads_.schedule(url, std::chrono::steady_clock::now() + backoff,
                    [this, url, body = std::move(body), number, next]() mutable {
                      attempt(url, std::move(body), number + 1, next);
                    });
}

bool is_valid_callback_url(const std::string &url) {
  static const std::regex pattern(R"(https?://[A-Za-z0-9._\-\[\]:]+(/[\x21-\x7e]*)?)");
  return url.size() <= 2048 && std::regex_match(url, pattern);
}

}  // namespace blade
