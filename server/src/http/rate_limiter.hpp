// Per-key token buckets (a key is a token's name, or a client address for
// requests that failed authentication). Thread-safe.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace blade::server {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // Takes one request from `key`'s bucket, which refills at `per_second`
  // and holds at most twice that (a burst). per_second <= 0: unlimited.
  bool allow(const std::string &key, double per_second, Clock::time_point now = Clock::now());

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point last{};
  };
  // Buckets of keys idle this long are dropped, so a scan of many client
  // addresses cannot grow the map without bound.
  static constexpr std::chrono::seconds kIdle{60};
  static constexpr std::size_t kSweepAbove = 4096;

  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace blade::server
