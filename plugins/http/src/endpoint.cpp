#include "endpoint.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>

#include <blade/plugin.hpp>

namespace blade::http {
namespace {

bool is_ipv4(const std::string &host) {
  in_addr a{};
  return ::inet_pton(AF_INET, host.c_str(), &a) == 1;
}
bool is_ipv6(const std::string &host) {
  in6_addr a{};
  return ::inet_pton(AF_INET6, host.c_str(), &a) == 1;
}

[[noreturn]] void bad(std::string_view flag, const std::string &why) {
  throw sdk::InvalidArgument(std::string(flag) + ": " + why);
}

// Host names as DNS writes them (letters, digits, '-', '.'), so a flag
// cannot smuggle anything else into a resolver call or the result.
bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '-' || c == '.'))
      return false;
  return host.front() != '-' && host.front() != '.';
}

Endpoint parse(std::string_view flag, std::string_view value, bool listen) {
  const std::string example = listen ? "127.0.0.1:18080 or [::1]:18080" : "127.0.0.1:8080";
  if (value.empty()) bad(flag, "required, e.g. " + example);
  Endpoint e;
  std::string_view port_text;
  if (value.front() == '[') {
    const auto close = value.find(']');
    if (close == std::string_view::npos || close + 1 >= value.size() || value[close + 1] != ':')
      bad(flag, "'" + std::string(value) + "' is not [IPv6 address]:port, e.g. [::1]:18080");
    e.host = std::string(value.substr(1, close - 1));
    if (!is_ipv6(e.host)) bad(flag, "'" + e.host + "' in brackets is not an IPv6 address");
    e.ip_literal = true;
    port_text = value.substr(close + 2);
  } else {
    const auto colon = value.rfind(':');
    if (colon == std::string_view::npos)
      bad(flag, "'" + std::string(value) + "' has no port; write address:port, e.g. " + example);
    e.host = std::string(value.substr(0, colon));
    if (e.host.find(':') != std::string::npos)
      bad(flag, "an IPv6 address needs brackets: [" + e.host + "]:port");
    port_text = value.substr(colon + 1);
    e.ip_literal = is_ipv4(e.host);
    if (!e.ip_literal && (listen || !is_host_name(e.host))) {
      bad(flag, listen ? "'" + e.host + "' is not an IP address to listen on, e.g. " + example
                       : "'" + e.host + "' is not a host name or IP address");
    }
  }
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    bad(flag, "'" + std::string(port_text) + "' is not a port number (0 to 65535)");
  }
  if (!listen && port == 0) bad(flag, "port 0 is not a port to connect to");
  e.port = static_cast<std::uint16_t>(port);
  return e;
}

bool is_wildcard(const std::string &host) { return host == "0.0.0.0" || host == "::"; }
bool is_loopback(const std::string &host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace

std::string Endpoint::text() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Endpoint parse_listen(std::string_view flag, std::string_view value) {
  return parse(flag, value, true);
}
Endpoint parse_upstream(std::string_view flag, std::string_view value) {
  return parse(flag, value, false);
}

bool same_socket(const Endpoint &listen, const Endpoint &upstream) {
  if (listen.port != upstream.port) return false;
  if (listen.host == upstream.host) return true;
  return is_wildcard(listen.host) && is_loopback(upstream.host);
}

}  // namespace blade::http
