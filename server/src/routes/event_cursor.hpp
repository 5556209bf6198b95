// One event stream's position in the EventBus: the replay a resuming client
// is owed, then the live events, each written once and in order, as
// Server-Sent Events text. No I/O and no locking: the stream owns it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "blade/core/experiment/event_bus.hpp"

namespace blade::server {

// `id: <id>\nevent: <type>\ndata: <data, one line of JSON>\n\n`
std::string format_sse(std::uint64_t id, std::string_view type, std::string_view data);

class EventCursor {
 public:
  // `from`: the id the client resumes after (none: live events only).
  // `kept`: the bus history, read after subscribing, so every event is in
  // `kept`, or arrives live, or both (the overlap is written once).
  EventCursor(std::optional<std::uint64_t> from, const std::vector<Event> &kept);

  // What to write before any live event: an `event: reset` when the events
  // after `from` are not all kept (evicted, or `from` is not an id of this
  // daemon run), then the kept events after `from`. Empty the second time.
  std::string take_replay() { return std::exchange(replay_, {}); }

  // Text for events delivered by the subscription, skipping what was
  // already written.
  template <class Events>
  std::string take_live(const Events &events) {
    std::string text;
    for (const Event &e : events) {
      if (e.id <= last_sent_) continue;
      text += format_sse(e.id, e.type, *e.data);
      last_sent_ = e.id;
    }
    return text;
  }

  std::uint64_t last_sent() const { return last_sent_; }

 private:
  std::string replay_;
  std::uint64_t last_sent_ = 0;
};

}  // namespace blade::server
