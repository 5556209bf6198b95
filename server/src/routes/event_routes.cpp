// GET /v1/events: the EventBus as Server-Sent Events.
//
// Each event is written as
//   id: <event id>
//   event: experiment | preparation | plugin
//   data: <the object as one line of JSON>
// and a ": keepalive" comment goes out every 15 s so proxies keep the stream.
//
// Resuming: a Last-Event-ID header (what EventSource sends on reconnect) or
// ?last_event_id= replays the kept events after that id, then continues live,
// with no gap and no duplicate. Event ids count from 1 within one daemon run
// and only the most recent events are kept, so when the events after the
// given id can no longer all be replayed (evicted, or the id is from an
// earlier run), the stream starts with
//   id: <the id the stream continues after>
//   event: reset
//   data: {"last_event_id": N, "oldest_event_id": M, "message": "..."}
// and then replays what is kept (ids >= M; nothing when the id is from an
// earlier run) before going live. A client that gets a reset has missed
// events and should re-read the state (GET /v1/experiments) before trusting
// its view again.
//
// The stream ends (cleanly) when bladed stops, or when the client falls
// more than kQueueLimit events behind; the client then reconnects with
// Last-Event-ID and loses nothing that is still kept.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "blade/core/experiment/event_bus.hpp"
#include "blade/core/model/error.hpp"
#include "event_cursor.hpp"
#include "http/http_server.hpp"
#include "sse_response.hpp"

namespace blade::server {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kQueueLimit = 4096;
constexpr auto kKeepalive = std::chrono::seconds(15);
// How often an idle stream checks that its client is still there.
constexpr auto kLivenessPoll = std::chrono::seconds(1);

// The id to resume after: the Last-Event-ID header, else ?last_event_id=.
std::optional<std::uint64_t> resume_id(const httplib::Request &req) {
  std::string field = "Last-Event-ID";
  std::string text = req.get_header_value("Last-Event-ID");
  if (text.empty() && req.has_param("last_event_id")) {
    field = "last_event_id";
    text = req.get_param_value("last_event_id");
  }
  if (text.empty()) return std::nullopt;
  std::uint64_t id = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw Error(ErrorCode::InvalidArgument, field + ": must be an event id (a decimal integer)",
                {{field, "must be a decimal integer"}});
  }
  return id;
}

// One open stream. The provider holds it; when httplib drops the provider
// (the response is done) the subscription goes and the slot is given back.
class Stream {
 public:
  Stream(std::atomic<int> &open, std::mutex &mutex, std::condition_variable &cv,
         const std::atomic<bool> &stopping)
      : open_(open), mutex_(mutex), cv_(cv), stopping_(stopping) {
    slots_taken = ++open_;
  }
  ~Stream() {
    subscription.reset();  // no listener call runs once this returns
    --open_;
  }
  Stream(const Stream &) = delete;
  Stream &operator=(const Stream &) = delete;

  // Only queues and wakes the stream: it runs on the publisher's thread,
  // under the bus lock.
  void on_event(const Event &e) {
    {
      std::lock_guard lock(mutex_);
      if (queue_.size() >= kQueueLimit) {
        overflow_ = true;
      } else {
        queue_.push_back(e);
      }
    }
    cv_.notify_all();
  }

  // One call of the content provider: writes what is due, or waits for it
  // (at most kLivenessPoll). False ends the response as failed.
  bool pump(httplib::DataSink &sink);

  int slots_taken = 0;  // open streams counting this one
  EventBus::Subscription subscription;
  std::optional<EventCursor> cursor;

 private:
  bool write(httplib::DataSink &sink, const std::string &text) {
    next_keepalive_ = Clock::now() + kKeepalive;
    return sink.write(text.data(), text.size());
  }

  std::atomic<int> &open_;
  std::mutex &mutex_;  // guards queue_ and overflow_
  std::condition_variable &cv_;
  const std::atomic<bool> &stopping_;
  std::deque<Event> queue_;
  bool overflow_ = false;
  bool opened_ = false;
  Clock::time_point next_keepalive_ = Clock::now() + kKeepalive;
};

bool Stream::pump(httplib::DataSink &sink) {
  if (!opened_) {
    // A comment first, so the client sees the stream open at once.
    opened_ = true;
    return write(sink, ": stream open\n\n" + cursor->take_replay());
  }

  std::deque<Event> batch;
  bool overflow = false;
  {
    std::unique_lock lock(mutex_);
    cv_.wait_until(lock, std::min(next_keepalive_, Clock::now() + kLivenessPoll),
                   [&] { return stopping_.load() || !queue_.empty() || overflow_; });
    if (stopping_) {
      lock.unlock();
      sink.done();  // bladed is stopping: end the stream cleanly
      return true;
    }
    batch.swap(queue_);
    overflow = overflow_;
  }

  const std::string text = cursor->take_live(batch);
  if (!text.empty() && !write(sink, text)) return false;
  if (overflow) {
    // Too far behind: end it; Last-Event-ID resumes the rest.
    sink.done();
    return true;
  }
  if (Clock::now() >= next_keepalive_) return write(sink, ": keepalive\n\n");
  return sink.is_writable();  // false: the client went away
}

}  // namespace

void HttpServer::install_event_routes() {
  route("GET", "/v1/events", Access::Read, {"last_event_id"},
        [this](const httplib::Request &req, httplib::Response &res, RequestContext &) {
          const auto from = resume_id(req);
          if (stopping_) throw Error(ErrorCode::Unavailable, "bladed is shutting down");

          auto stream =
              std::make_shared<Stream>(open_streams_, stream_mutex_, stream_cv_, stopping_);
          // A stream holds an HTTP worker thread for its whole life, so
          // their number is capped below the pool size.
          if (stream->slots_taken > config_.max_event_streams) {
            throw Error(ErrorCode::ResourceExhausted,
                        fmt::format("{} event streams are open, the configured maximum",
                                    config_.max_event_streams));
          }
          // Subscribed before the history is read: every event is in one or
          // both, and the overlap is skipped by id.
          Stream *raw = stream.get();
          stream->subscription =
              daemon_.events().subscribe([raw](const Event &e) { raw->on_event(e); });
          stream->cursor.emplace(from, daemon_.events().since(0));

          start_event_stream(res, std::move(stream));
        });
}

}  // namespace blade::server
