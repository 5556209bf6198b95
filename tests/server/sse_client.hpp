// A Server-Sent Events reader for the tests of bladed's streams: it reads
// one stream on its own thread and keeps what arrives, parsed.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "bladed_process.hpp"

namespace blade::test {

struct SseEvent {
  std::string id;
  std::string type;
  std::string data;
  std::chrono::steady_clock::time_point at;  // when its last byte arrived
};

// An EventSource of sorts: reads an event stream (/v1/events,
// /v1/config/stream) on its own thread and parses what arrives into events
// (and counts comments).
class SseClient {
 public:
  SseClient(const BladedProcess &d, httplib::Headers headers, std::string path = "/v1/events")
      : client_(d.client()) {
    client_.set_read_timeout(60);
    thread_ = std::thread([this, headers = std::move(headers), path = std::move(path)] {
      client_.Get(
          path.c_str(), headers,
          [this](const httplib::Response &res) {
            std::lock_guard lock(mutex_);
            status_ = res.status;
            headers_ = res.headers;
            return true;
          },
          [this](const char *data, std::size_t n) {
            feed(std::string(data, n));
            return true;
          });
      ended_ = true;
    });
  }
  ~SseClient() { close(); }
  SseClient(const SseClient &) = delete;
  SseClient &operator=(const SseClient &) = delete;

  // Drops the connection, as a client that goes away does.
  void close() {
    client_.stop();
    if (thread_.joinable()) thread_.join();
  }

  // The stream is open (the daemon wrote its first comment).
  bool opened() const {
    std::lock_guard lock(mutex_);
    return comments_ > 0;
  }
  // Comments (": ...") received so far.
  int comments() const {
    std::lock_guard lock(mutex_);
    return comments_;
  }
  bool ended() const { return ended_; }
  int status() const {
    std::lock_guard lock(mutex_);
    return status_;
  }
  std::string header(const std::string &name) const {
    std::lock_guard lock(mutex_);
    auto it = headers_.find(name);
    return it == headers_.end() ? "" : it->second;
  }
  std::vector<SseEvent> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }
  // The events of `type` so far, and the `n`th of them (from 1) once it has
  // arrived: without copying the others, which may be megabytes each.
  std::size_t count(const std::string &type) const {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(
        std::count_if(events_.begin(), events_.end(), [&](const SseEvent &e) { return e.type == type; }));
  }
  std::optional<SseEvent> nth(const std::string &type, std::size_t n) const {
    std::lock_guard lock(mutex_);
    for (const auto &e : events_)
      if (e.type == type && --n == 0) return e;
    return std::nullopt;
  }
  // Bytes that were not a complete event or comment, or a line this parser
  // does not know: the stream's framing is broken.
  std::vector<std::string> junk() const {
    std::lock_guard lock(mutex_);
    return junk_;
  }

 private:
  void feed(const std::string &bytes) {
    std::lock_guard lock(mutex_);
    // The search resumes where the last one stopped: an event of megabytes
    // arrives in many pieces, and rescanning it whole for each would cost
    // more than the daemon's own latency.
    const std::size_t resume = buffer_.empty() ? 0 : buffer_.size() - 1;
    buffer_ += bytes;
    for (auto end = buffer_.find("\n\n", resume); end != std::string::npos;
         end = buffer_.find("\n\n")) {
      std::string block = buffer_.substr(0, end + 1);
      buffer_.erase(0, end + 2);
      parse_block(block, std::chrono::steady_clock::now());
    }
  }

  void parse_block(const std::string &block, std::chrono::steady_clock::time_point at) {
    SseEvent e;
    e.at = at;
    bool any_field = false;
    std::size_t pos = 0;
    while (pos < block.size()) {
      auto nl = block.find('\n', pos);
      std::string line = block.substr(pos, nl - pos);
      pos = nl + 1;
      if (line.starts_with(":")) {
        ++comments_;
      } else if (line.starts_with("id: ")) {
        e.id = line.substr(4);
        any_field = true;
      } else if (line.starts_with("event: ")) {
        e.type = line.substr(7);
        any_field = true;
      } else if (line.starts_with("data: ")) {
        if (!e.data.empty()) junk_.push_back("second data line: " + line);
        e.data = line.substr(6);
        any_field = true;
      } else {
        junk_.push_back(line);
      }
    }
    if (any_field) events_.push_back(e);
  }

  httplib::Client client_;
  std::thread thread_;
  std::atomic<bool> ended_{false};
  mutable std::mutex mutex_;
  int status_ = 0;
  httplib::Headers headers_;
  std::string buffer_;
  int comments_ = 0;
  std::vector<SseEvent> events_;
  std::vector<std::string> junk_;
};

}  // namespace blade::test
