// The proxy's two addresses as its flags give them: `listen` (an IP
// literal and a port: "127.0.0.1:18080", "[::1]:18080", "0.0.0.0:0") and
// `upstream` (a host name or IP literal and a port: "orders:8080",
// "10.0.0.7:80", "[fd00::7]:80"). Parsed once at create; every error names
// the flag, so the daemon's 400 says which one was wrong.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace blade::http {

struct Endpoint {
  std::string host;  // without the brackets of an IPv6 literal
  std::uint16_t port = 0;
  bool ip_literal = false;  // host is an IPv4 or IPv6 address, not a name

  // "host:port", with brackets around an IPv6 host: the text the result shows.
  std::string text() const;
};

// Parses `value` of flag `flag`. listen needs an IP literal and accepts
// port 0 (any free port); upstream accepts a host name and needs a port
// from 1 to 65535. Throws sdk::InvalidArgument("<flag>: ...").
Endpoint parse_listen(std::string_view flag, std::string_view value);
Endpoint parse_upstream(std::string_view flag, std::string_view value);

// True when a proxy listening on `listen` would forward to itself at
// `upstream`: the same port, and the same address, or a wildcard listener
// and an upstream on this host's loopback.
bool same_socket(const Endpoint &listen, const Endpoint &upstream);

}  // namespace blade::http
