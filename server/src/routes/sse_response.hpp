// Answering with a Server-Sent Events stream (/v1/events, /v1/config/stream).
#pragma once

#include <cstddef>
#include <memory>

#include <httplib.h>

namespace blade::server {

// Makes `res` an event stream whose chunks `stream->pump(sink)` writes, one
// call at a time until it returns false or ends the sink. The provider holds
// `stream`, so it lives exactly as long as the response.
template <class Stream>
void start_event_stream(httplib::Response &res, std::shared_ptr<Stream> stream) {
  res.set_header("Cache-Control", "no-cache");
  // nginx buffers responses unless told not to; a buffered stream is no stream.
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [stream = std::move(stream)](std::size_t, httplib::DataSink &sink) {
        return stream->pump(sink);
      });
}

}  // namespace blade::server
