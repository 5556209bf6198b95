// What the network faults select traffic by: ports and port ranges, ip
// addresses and CIDR blocks, each flag a comma-separated list as in
// ChaosBlade ("80,8080,9000-9010"; "10.0.0.1,192.168.0.0/16,fd00::/8").
// The host has validated the flags against the spec; these parse them
// again because a plugin trusts no input, and name the flag when one is bad.
// Shared by the netem faults (u32 keys) and drop (nftables sets).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <blade/plugin.hpp>

namespace blade::network {

struct PortRange {
  std::uint16_t first = 0;
  std::uint16_t last = 0;
  bool operator==(const PortRange &) const = default;
  std::string text() const;  // "80" or "8000-8010"
};

// An address or a network: `prefix` bits of `addr` (network byte order;
// the first 4 bytes for IPv4) are significant.
struct IpNet {
  int family = 0;  // AF_INET or AF_INET6
  std::array<std::uint8_t, 16> addr{};
  int prefix = 0;
  bool operator==(const IpNet &) const = default;
  std::string text() const;  // "10.0.0.0/8", or the bare address for a full prefix
};

// Throw sdk::InvalidArgument("<flag>: ...") on a bad element, an empty
// element, a port 0 or above 65535, a range whose start exceeds its end,
// a prefix too long for its family. A CIDR's host bits are cleared.
std::vector<PortRange> parse_ports(std::string_view flag, std::string_view value);
std::vector<IpNet> parse_ips(std::string_view flag, std::string_view value);

// The flag's list, empty when the flag is absent or empty.
std::vector<PortRange> request_ports(const sdk::Request &req, std::string_view flag);
std::vector<IpNet> request_ips(const sdk::Request &req, std::string_view flag);

// A port range as the fewest (value, mask) pairs that match exactly its
// ports, as u32 selectors need (8000-8010: 8000/fff8, 8008/fffe, 8010/ffff).
std::vector<std::pair<std::uint16_t, std::uint16_t>> port_masks(PortRange range);

}  // namespace blade::network
