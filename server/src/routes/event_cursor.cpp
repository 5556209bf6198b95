#include "event_cursor.hpp"

#include <fmt/format.h>

namespace blade::server {

std::string format_sse(std::uint64_t id, std::string_view type, std::string_view data) {
  // Event data is JSON without indent, one line: newlines inside strings
  // are escaped.
  return fmt::format("id: {}\nevent: {}\ndata: {}\n\n", id, type, data);
}

namespace {

std::string reset_event(std::uint64_t id, std::uint64_t last, std::uint64_t oldest,
                        const char *message) {
  const nlohmann::json data = {
      {"last_event_id", last}, {"oldest_event_id", oldest}, {"message", message}};
  return format_sse(id, "reset", data.dump());
}

}  // namespace

EventCursor::EventCursor(std::optional<std::uint64_t> from, const std::vector<Event> &kept) {
  const std::uint64_t head = kept.empty() ? 0 : kept.back().id;
  if (!from) {
    last_sent_ = head;  // a fresh stream is live only
    return;
  }
  const std::uint64_t oldest = kept.empty() ? head + 1 : kept.front().id;
  if (*from > head) {
    // Not an id of this run: ids restart at 1 when bladed restarts.
    replay_ = reset_event(head, *from, oldest,
                          "unknown event id (bladed restarted?); re-read the state");
    last_sent_ = head;
    return;
  }
  if (*from + 1 < oldest) {
    replay_ = reset_event(oldest - 1, *from, oldest,
                          "events after this id are no longer kept; re-read the state");
  }
  last_sent_ = *from;
  replay_ += take_live(kept);
}

}  // namespace blade::server
