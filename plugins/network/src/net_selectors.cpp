#include "net_selectors.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <charconv>

namespace blade::network {
namespace {

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

std::vector<std::string_view> split(std::string_view value) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const auto comma = value.find(',', start);
    out.push_back(trim(value.substr(start, comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

[[noreturn]] void bad(std::string_view flag, const std::string &what) {
  throw sdk::InvalidArgument(std::string(flag) + ": " + what);
}

bool parse_number(std::string_view s, unsigned long max, unsigned long &out) {
  if (s.empty() || s.size() > 5) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && out <= max;
}

std::uint16_t port_of(std::string_view flag, std::string_view s, std::string_view element) {
  unsigned long n = 0;
  if (!parse_number(s, 65535, n) || n == 0)
    bad(flag, "must be ports 1-65535 or ranges like 8000-8080, got '" + std::string(element) + "'");
  return static_cast<std::uint16_t>(n);
}

}  // namespace

std::string PortRange::text() const {
  return first == last ? std::to_string(first)
                       : std::to_string(first) + "-" + std::to_string(last);
}

std::string IpNet::text() const {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(family, addr.data(), buf, sizeof buf);
  const int full = family == AF_INET ? 32 : 128;
  return prefix == full ? std::string(buf) : std::string(buf) + "/" + std::to_string(prefix);
}

std::vector<PortRange> parse_ports(std::string_view flag, std::string_view value) {
  std::vector<PortRange> out;
  for (std::string_view element : split(value)) {
    if (element.empty()) bad(flag, "empty element in '" + std::string(value) + "'");
    const auto dash = element.find('-');
    PortRange r;
    r.first = port_of(flag, trim(element.substr(0, dash)), element);
    r.last = dash == std::string_view::npos ? r.first
                                            : port_of(flag, trim(element.substr(dash + 1)), element);
    if (r.first > r.last)
      bad(flag, "range start must not exceed its end, got '" + std::string(element) + "'");
    out.push_back(r);
  }
  return out;
}

std::vector<IpNet> parse_ips(std::string_view flag, std::string_view value) {
  std::vector<IpNet> out;
  for (std::string_view element : split(value)) {
    if (element.empty()) bad(flag, "empty element in '" + std::string(value) + "'");
    const auto slash = element.find('/');
    const std::string host(element.substr(0, slash));
    IpNet n;
    if (::inet_pton(AF_INET, host.c_str(), n.addr.data()) == 1) {
      n.family = AF_INET;
    } else if (::inet_pton(AF_INET6, host.c_str(), n.addr.data()) == 1) {
      n.family = AF_INET6;
    } else {
      bad(flag, "must be IP addresses or CIDRs like 10.0.0.0/8, got '" + std::string(element) + "'");
    }
    const int full = n.family == AF_INET ? 32 : 128;
    n.prefix = full;
    if (slash != std::string_view::npos) {
      unsigned long bits = 0;
      if (!parse_number(element.substr(slash + 1), static_cast<unsigned long>(full), bits))
        bad(flag, "prefix length must be 0-" + std::to_string(full) + ", got '" +
                      std::string(element) + "'");
      n.prefix = static_cast<int>(bits);
    }
    // Clear the host bits, so 10.1.2.3/8 means the network 10.0.0.0/8.
    for (int bit = n.prefix; bit < full; ++bit)
      n.addr[static_cast<std::size_t>(bit / 8)] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
    out.push_back(n);
  }
  return out;
}

std::vector<PortRange> request_ports(const sdk::Request &req, std::string_view flag) {
  const auto v = req.flag(flag);
  if (!v || trim(*v).empty()) return {};
  return parse_ports(flag, *v);
}

std::vector<IpNet> request_ips(const sdk::Request &req, std::string_view flag) {
  const auto v = req.flag(flag);
  if (!v || trim(*v).empty()) return {};
  return parse_ips(flag, *v);
}

std::vector<std::pair<std::uint16_t, std::uint16_t>> port_masks(PortRange range) {
  std::vector<std::pair<std::uint16_t, std::uint16_t>> out;
  std::uint32_t at = range.first;
  const std::uint32_t end = range.last;
  while (at <= end) {
    // The largest aligned block starting at `at` that stays within the range.
    std::uint32_t size = at == 0 ? 0x10000 : (at & (~at + 1));
    while (at + size - 1 > end)
      size >>= 1;
    out.emplace_back(static_cast<std::uint16_t>(at),
                     static_cast<std::uint16_t>(0xFFFFu & ~(size - 1)));
    at += size;
  }
  return out;
}

}  // namespace blade::network
