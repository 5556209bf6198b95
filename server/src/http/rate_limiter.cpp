#include "rate_limiter.hpp"

#include <algorithm>

namespace blade::server {

bool RateLimiter::allow(const std::string &key, double per_second, Clock::time_point now) {
  if (per_second <= 0) return true;
  const double burst = std::max(1.0, 2 * per_second);
  std::lock_guard lock(mutex_);
  if (buckets_.size() > kSweepAbove) {
    std::erase_if(buckets_, [&](const auto &kv) { return now - kv.second.last > kIdle; });
  }
  auto [it, fresh] = buckets_.try_emplace(key, Bucket{burst, now});
  Bucket &b = it->second;
  if (!fresh) {
    const double elapsed = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(burst, b.tokens + elapsed * per_second);
    b.last = now;
  }
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

}  // namespace blade::server
