#include "channel.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace blade::cri {

std::optional<std::string> Channel::read_line() {
  for (;;) {
    if (auto line = in_.next()) return line;
    char chunk[65536];
    ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    in_.append(chunk, static_cast<std::size_t>(n));
  }
}

bool Channel::send(const nlohmann::json &message) {
  // Text a fault produced (a file name, a command's output) may be any
  // bytes: replaced, never thrown on.
  const std::string line =
      message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard lock(write_mu_);
  std::size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::send(fd_, line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

bool Channel::done(int status, const std::string &error, const nlohmann::json &result,
                   const nlohmann::json &restore, const nlohmann::json &plan) {
  return send({{"type", "done"},
               {"status", status},
               {"error", error},
               {"result", result},
               {"restore", restore},
               {"plan", plan}});
}

}  // namespace blade::cri
