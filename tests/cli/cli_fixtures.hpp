// What the CLI tests share: a runner pointed at a real bladed, reading an
// experiment back over the API, and a port nothing listens on.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "../server/bladed_process.hpp"
#include "blade_run.hpp"

namespace blade::test {

// A runner pointed at `d` with the admin token, as a user's environment is.
inline BladeRunner runner_for(const BladedProcess &d) {
  return BladeRunner({"BLADE_ENDPOINT=" + d.url(), "BLADE_API_TOKEN=" + kToken});
}

inline nlohmann::json experiment(BladedProcess &d, const std::string &uid) {
  auto c = d.client();
  auto res = c.Get(("/v1/experiments/" + uid).c_str(), auth());
  REQUIRE(res);
  return nlohmann::json::parse(res->body)["data"];
}

inline bool is_uid(const std::string &text) {
  return std::regex_match(text, std::regex("[0-9a-f]{16}"));
}

// A port nothing listens on: bound, then closed.
inline int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace blade::test
