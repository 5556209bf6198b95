// The helper's end of the protocol (helper_protocol.hpp): JSON lines on
// fd 3. Reads block (only the main thread reads); writes are whole lines
// under a lock, since a fault's own threads log too.
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "../helper_protocol.hpp"

namespace blade::cri {

class Channel {
 public:
  explicit Channel(int fd) : fd_(fd) {}
  Channel(const Channel &) = delete;
  Channel &operator=(const Channel &) = delete;

  // The next line; nullopt once the plugin closed its end (or the read
  // failed). Throws std::length_error for a line over kMaxLineBytes.
  std::optional<std::string> read_line();
  // One message as one line; false when the plugin is gone.
  bool send(const nlohmann::json &message);

  void log(const char *level, const std::string &message) {
    send({{"type", "log"}, {"level", level}, {"message", message}});
  }
  // The one answer to a request.
  bool done(int status, const std::string &error,
            const nlohmann::json &result = nullptr, const nlohmann::json &restore = nullptr,
            const nlohmann::json &plan = nullptr);

 private:
  int fd_;
  LineBuffer in_;
  std::mutex write_mu_;
};

}  // namespace blade::cri
