// Waiting by polling with a deadline, never by a fixed sleep alone.
#pragma once

#include <chrono>
#include <thread>

namespace blade::test {

// Polls `pred` every 10 ms until it holds or `timeout` passes; its last answer.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

}  // namespace blade::test
