// GET /v1/config/stream: the compiled HTTP fault rule set (the "http.rules"
// topic) as Server-Sent Events, for data planes that follow the policies.
//
// At connect, and after every change of the rule set:
//   id: <the rule set's version>
//   event: update
//   data: <the rule set as one line of JSON>
// and a ": keepalive" comment after every --config-stream-keepalive seconds
// without a write.
//
// Unlike /v1/events, nothing is queued: each update replaces the whole set,
// so a stream keeps only the latest document. A document that arrives
// before the previous one was written supersedes it; memory per stream is
// one shared pointer, and the publisher only swaps it (never waits on a
// reader). A reader that stops taking bytes holds only its own connection
// thread, and for at most --write-timeout: its write then fails and the
// stream ends. The stream also ends when bladed stops.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include <fmt/format.h>

#include "blade/core/model/error.hpp"
#include "blade/core/model/log.hpp"
#include "blade/core/plugin/topic_hub.hpp"
#include "blade/core/policy/policy.hpp"
#include "http/http_server.hpp"

namespace blade::server {
namespace {

using Clock = std::chrono::steady_clock;

// How often an idle stream checks that its client is still there.
constexpr auto kLivenessPoll = std::chrono::seconds(1);

}  // namespace

// The frame of the latest document, made once however many streams write
// it: a rule set can be megabytes, and parsing it once per reader would
// cost every reader's latency. Keeps one document and its frame.
class ConfigFrames {
 public:
  struct Frame {
    std::string version;
    std::string text;  // empty when the document is unusable
  };

  std::shared_ptr<const Frame> frame_for(const TopicHub::Document &doc) {
    // Held while a frame is made, so the other streams wait for that one
    // instead of each making its own.
    std::lock_guard lock(mutex_);
    if (doc != doc_) {
      doc_ = doc;
      frame_ = std::make_shared<const Frame>(make_frame(*doc));
    }
    return frame_;
  }

 private:
  // The SSE event for one rule set document. The document is the daemon's
  // own (compile_rule_set), so a parse failure is a bug: logged, not sent.
  static Frame make_frame(const std::string &doc) {
    Frame f;
    nlohmann::json set = nlohmann::json::parse(doc, nullptr, false);
    if (!set.is_object() || !set.contains("version") || !set["version"].is_string()) {
      log::error("config stream: the rule set document has no version",
                 {{"bytes", std::to_string(doc.size())}});
      return f;
    }
    f.version = set["version"].get<std::string>();
    // dump() writes one line whatever the document's own layout was.
    f.text = fmt::format("id: {}\nevent: update\ndata: {}\n\n", f.version, set.dump());
    return f;
  }

  std::mutex mutex_;
  TopicHub::Document doc_;
  std::shared_ptr<const Frame> frame_;
};

namespace {

// One open stream, held by its content provider: when httplib drops the
// provider the subscription ends and the slot is given back.
class ConfigStream {
 public:
  ConfigStream(std::atomic<int> &open, std::mutex &mutex, std::condition_variable &cv,
               const std::atomic<bool> &stopping, Clock::duration keepalive,
               std::shared_ptr<ConfigFrames> frames)
      : open_(open),
        mutex_(mutex),
        cv_(cv),
        stopping_(stopping),
        keepalive_(keepalive),
        frames_(std::move(frames)) {
    slots_taken = ++open_;
  }
  ~ConfigStream() {
    subscription.reset();  // no listener call runs once this returns
    --open_;
  }
  ConfigStream(const ConfigStream &) = delete;
  ConfigStream &operator=(const ConfigStream &) = delete;

  // Runs on the publisher's thread: swaps the pointer and wakes the stream.
  void on_document(const TopicHub::Document &doc) {
    {
      std::lock_guard lock(mutex_);
      latest_ = doc;
    }
    cv_.notify_all();
  }

  // One call of the content provider: writes the latest rule set if it is
  // new to this client, or a keep-alive when due; waits at most
  // kLivenessPoll for either. False ends the response as failed.
  bool pump(httplib::DataSink &sink);

  int slots_taken = 0;  // open config streams counting this one
  TopicHub::Subscription subscription;

 private:
  bool write(httplib::DataSink &sink, const std::string &text) {
    next_keepalive_ = Clock::now() + keepalive_;
    return sink.write(text.data(), text.size());
  }

  std::atomic<int> &open_;
  std::mutex &mutex_;  // guards latest_
  std::condition_variable &cv_;
  const std::atomic<bool> &stopping_;
  const Clock::duration keepalive_;
  const std::shared_ptr<ConfigFrames> frames_;
  TopicHub::Document latest_;  // not yet written; null when nothing is due
  std::string sent_version_;   // the version this client has
  Clock::time_point next_keepalive_ = Clock::now() + keepalive_;
};

bool ConfigStream::pump(httplib::DataSink &sink) {
  TopicHub::Document doc;
  {
    std::unique_lock lock(mutex_);
    cv_.wait_until(lock, std::min(next_keepalive_, Clock::now() + kLivenessPoll),
                   [&] { return stopping_.load() || latest_ != nullptr; });
    if (stopping_) {
      lock.unlock();
      sink.done();  // bladed is stopping: end the stream cleanly
      return true;
    }
    doc = std::move(latest_);
    latest_ = nullptr;
  }
  if (doc) {
    // The same content republished (an update that changed nothing) is
    // not news to a data plane.
    const auto frame = frames_->frame_for(doc);
    if (!frame->text.empty() && frame->version != sent_version_) {
      if (!write(sink, frame->text)) return false;
      sent_version_ = frame->version;
    }
  }
  if (Clock::now() >= next_keepalive_) return write(sink, ": keepalive\n\n");
  return sink.is_writable();  // false: the client went away or stopped reading
}

}  // namespace

void HttpServer::install_config_stream_route() {
  config_frames_ = std::make_shared<ConfigFrames>();
  route("GET", "/v1/config/stream", Access::Read, {},
        [this](const httplib::Request &, httplib::Response &res, RequestContext &) {
          if (stopping_) throw Error(ErrorCode::Unavailable, "bladed is shutting down");
          const auto keepalive = std::chrono::duration_cast<Clock::duration>(
              std::chrono::duration<double>(config_.config_stream_keepalive));
          auto stream = std::make_shared<ConfigStream>(open_config_streams_, stream_mutex_,
                                                       stream_cv_, stopping_, keepalive,
                                                       config_frames_);
          // A stream holds a connection and its thread for its whole life.
          if (stream->slots_taken > config_.max_config_streams) {
            throw Error(ErrorCode::ResourceExhausted,
                        fmt::format("{} config streams are open, the configured maximum",
                                    config_.max_config_streams));
          }
          ConfigStream *raw = stream.get();
          // Hands over the current rule set before returning: the first
          // event is the full set.
          stream->subscription = daemon_.topics().subscribe(
              kHttpRulesTopic,
              [raw](const std::string &, const TopicHub::Document &doc) { raw->on_document(doc); });
          if (!stream->subscription)
            throw Error(ErrorCode::Unavailable, "the HTTP fault rule set is not published yet");

          res.set_header("Cache-Control", "no-cache");
          res.set_header("X-Accel-Buffering", "no");
          res.set_chunked_content_provider(
              "text/event-stream",
              [stream](std::size_t, httplib::DataSink &sink) { return stream->pump(sink); });
        });
}

}  // namespace blade::server
