#include "channel.hpp"

namespace blade::cri {

std::optional<std::string> Channel::read_line() {
  for (;;) {
    if (auto line = in_.next()) return line;
    if (!read_some(fd_, in_)) return std::nullopt;
  }
}

bool Channel::send(const nlohmann::json &message) {
  // Text a fault produced (a file name, a command's output) may be any
  // bytes: replaced, never thrown on.
  const std::string line =
      message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard lock(write_mu_);
  return send_all(fd_, line);
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
