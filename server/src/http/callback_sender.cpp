#include "callback_sender.hpp"

#include <regex>

#include <fmt/format.h>
#include <httplib.h>

namespace blade::server {

std::optional<std::string> post_callback(const std::string &url, const std::string &body,
                                         std::chrono::seconds timeout) {
  // scheme://host[:port] and the rest as the path.
  static const std::regex pattern(R"((https?://[^/]+)(/.*)?)");
  std::smatch m;
  if (!std::regex_match(url, m, pattern)) return "not an http(s) URL";
  httplib::Client client(m[1].str());
  client.set_connection_timeout(timeout);
  client.set_read_timeout(timeout);
  client.set_write_timeout(timeout);
  client.set_follow_location(false);
  std::string path = m[2].matched ? m[2].str() : "/";
  auto res = client.Post(path, body, "application/json");
  if (!res) return fmt::format("no answer: {}", httplib::to_string(res.error()));
  if (res->status < 200 || res->status > 299) return fmt::format("answered HTTP {}", res->status);
  return std::nullopt;
}

}  // namespace blade::server
