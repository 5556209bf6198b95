// An sdk::Call for driving HelperSession without a daemon: a deadline, a
// cancel switch, and nothing else (the session uses only those two).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include <blade/plugin.hpp>

namespace blade::test::cri {

class TestCall {
 public:
  explicit TestCall(std::chrono::milliseconds budget = std::chrono::seconds(20))
      : deadline_(std::chrono::steady_clock::now() + budget) {
    api_.struct_size = sizeof api_;
    api_.abi_major = BLADE_PLUGIN_ABI_MAJOR;
    api_.abi_minor = BLADE_PLUGIN_ABI_MINOR;
    api_.is_cancelled = [](blade_call *c) -> int { return self(c).cancelled_.load() ? 1 : 0; };
    api_.remaining_ms = [](blade_call *c) -> std::int64_t {
      return std::chrono::duration_cast<std::chrono::milliseconds>(self(c).deadline_ -
                                                                   std::chrono::steady_clock::now())
          .count();
    };
  }
  sdk::Call call() { return sdk::Call(&api_, reinterpret_cast<blade_call *>(this)); }
  void cancel() { cancelled_ = true; }

 private:
  static TestCall &self(blade_call *c) { return *reinterpret_cast<TestCall *>(c); }
  blade_host_api api_{};
  std::chrono::steady_clock::time_point deadline_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace blade::test::cri
