// Which packets a filtered netem-family fault hits, as u32 filters on the
// prio root: exclusions (exclude-port both ways, exclude-ip, the control
// path) first, to the untouched band 1; then the selection (local-port as
// source port, remote-port as destination port, destination-ip, protocol)
// to the fault's band. Within one flag the elements are alternatives (one
// filter each, port ranges as value/mask blocks); across flags all must
// match (the keys of one filter). IPv4 and IPv6, each at its own filter
// priority (the kernel wants one protocol per priority). Offsets assume an
// IPv4 header without options and IPv6 without extension headers, as tc's
// `match ip dport` does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <blade/plugin.hpp>
#include <nlohmann/json.hpp>

#include "control_path.hpp"
#include "net_selectors.hpp"
#include "netlink_route.hpp"

namespace blade::network {

// One 32-bit word of the packet compared under a mask, host byte order;
// `offset` from the network header, a multiple of 4.
struct U32Key {
  std::uint32_t value = 0;
  std::uint32_t mask = 0;
  int offset = 0;
};

struct U32Filter {
  int family = 0;  // AF_INET or AF_INET6
  std::uint16_t prio = 0;
  std::uint32_t classid = 0;
  std::vector<U32Key> keys;  // all must match
  std::string text;          // for people: "ipv4 sport 8000/0xfff8 -> b1ad:4"
};

// The request's selectors, parsed and checked.
struct Selection {
  std::vector<PortRange> local_ports, remote_ports, exclude_ports;
  std::vector<IpNet> destinations, exclude_ips;
  std::optional<std::string> protocol;  // tcp, udp, icmp

  bool selects() const {
    return !local_ports.empty() || !remote_ports.empty() || !destinations.empty() || protocol;
  }
  bool excludes() const { return !exclude_ports.empty() || !exclude_ips.empty(); }
};

// InvalidArgument("<flag>: ...") for a bad list, an unknown protocol, or
// ports with protocol icmp.
Selection selection_of(const sdk::Request &req);

// The filters steering `sel` to `fault_class` and its exclusions and
// `control` to `spare_class`; with no selector, every IPv4 and IPv6 packet
// not excluded goes to `fault_class`. InvalidArgument when the lists make
// more filters than a sane classifier chain (1024).
std::vector<U32Filter> plan_filters(const Selection &sel, const ControlPath &control,
                                    std::uint32_t fault_class, std::uint32_t spare_class);

// The request adding `f` under qdisc `parent` of `ifindex` (libnl-route
// u32), built to be sent in a NetlinkBatch: 0 and `out` set, or a negative
// libnl error. The kernel's answer -NLE_OBJ_NOTFOUND means it has no cls_u32.
int u32_filter_request(int ifindex, std::uint32_t parent, const U32Filter &f, NlMsgPtr &out);

}  // namespace blade::network
