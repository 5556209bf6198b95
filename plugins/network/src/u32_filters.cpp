#include "u32_filters.hpp"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <netlink/errno.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/tc.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>

#include "netlink_route.hpp"

namespace blade::network {
namespace {

constexpr std::size_t kMaxFilters = 1024;

// Filter priorities: exclusions before the selection, each per family.
constexpr std::uint16_t kSparePrio4 = 1, kSparePrio6 = 2, kFaultPrio4 = 3, kFaultPrio6 = 4;

// Where the fields are, from the start of the network header.
constexpr int kV4Proto = 8;  // the word ttl, protocol, checksum
constexpr int kV4Dst = 16;
constexpr int kV4Ports = 20;   // source port, destination port
constexpr int kV6NextHdr = 4;  // the word payload length, next header, hop limit
constexpr int kV6Dst = 24;
constexpr int kV6Ports = 40;

std::string hex(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", v);
  return buf;
}

// A port match: (value, mask) of a port_masks block, as text too.
struct PortMatch {
  std::uint16_t value = 0, mask = 0;
  std::string text() const {
    return mask == 0xffff ? std::to_string(value) : std::to_string(value) + "/" + hex(mask);
  }
};

std::vector<PortMatch> matches_of(const std::vector<PortRange> &ranges) {
  std::vector<PortMatch> out;
  for (const PortRange &r : ranges)
    for (const auto &[v, m] : port_masks(r))
      out.push_back({v, m});
  return out;
}

int protocol_number(const std::string &name, int family) {
  if (name == "tcp") return 6;
  if (name == "udp") return 17;
  return family == AF_INET ? 1 : 58;  // icmp, icmpv6
}

// A filter under construction for one family.
struct Builder {
  U32Filter f;
  explicit Builder(int family, std::uint16_t prio, std::uint32_t classid) {
    f.family = family;
    f.prio = prio;
    f.classid = classid;
    f.text = family == AF_INET ? "ipv4" : "ipv6";
  }
  void source_port(const PortMatch &p) {
    f.keys.push_back({std::uint32_t(p.value) << 16, std::uint32_t(p.mask) << 16,
                      f.family == AF_INET ? kV4Ports : kV6Ports});
    f.text += " sport " + p.text();
  }
  void destination_port(const PortMatch &p) {
    f.keys.push_back({p.value, p.mask, f.family == AF_INET ? kV4Ports : kV6Ports});
    f.text += " dport " + p.text();
  }
  void protocol(const std::string &name) {
    const auto n = static_cast<std::uint32_t>(protocol_number(name, f.family));
    if (f.family == AF_INET)
      f.keys.push_back({n << 16, 0x00ff0000u, kV4Proto});
    else
      f.keys.push_back({n << 8, 0x0000ff00u, kV6NextHdr});
    f.text += " protocol " + name;
  }
  void destination(const IpNet &net) {
    const int words = f.family == AF_INET ? 1 : 4;
    const int base = f.family == AF_INET ? kV4Dst : kV6Dst;
    for (int w = 0; w < words; ++w) {
      const int bits = std::min(32, std::max(0, net.prefix - 32 * w));
      if (bits == 0) break;
      const std::uint32_t mask = bits == 32 ? 0xffffffffu : ~(0xffffffffu >> bits);
      std::uint32_t word = 0;
      for (int b = 0; b < 4; ++b)
        word = (word << 8) | net.addr[static_cast<std::size_t>(4 * w + b)];
      f.keys.push_back({word & mask, mask, base + 4 * w});
    }
    f.text += " dst " + net.text();
  }
  U32Filter done(const std::string &to) {
    // A filter needs one key to have a selector; 0/0 matches every packet.
    if (f.keys.empty()) {
      f.keys.push_back({0, 0, 0});
      f.text += " all";
    }
    f.text += " -> " + to;
    return f;
  }
};

}  // namespace

Selection selection_of(const sdk::Request &req) {
  Selection s;
  s.local_ports = request_ports(req, "local-port");
  s.remote_ports = request_ports(req, "remote-port");
  s.exclude_ports = request_ports(req, "exclude-port");
  s.destinations = request_ips(req, "destination-ip");
  s.exclude_ips = request_ips(req, "exclude-ip");
  if (auto p = req.flag("protocol"); p && !p->empty()) {
    if (*p != "tcp" && *p != "udp" && *p != "icmp")
      throw sdk::InvalidArgument("protocol: must be tcp, udp or icmp, got '" + std::string(*p) +
                                 "'");
    if (*p == "icmp" && (!s.local_ports.empty() || !s.remote_ports.empty()))
      throw sdk::InvalidArgument(
          "protocol: icmp packets have no ports; local-port and remote-port need tcp or udp (or "
          "no protocol)");
    s.protocol = std::string(*p);
  }
  return s;
}

std::vector<U32Filter> plan_filters(const Selection &sel, const ControlPath &control,
                                    std::uint32_t fault_class, std::uint32_t spare_class) {
  const std::string spare = handle_text(spare_class) + " (spared)";
  const std::string fault = handle_text(fault_class) + " (fault)";
  std::vector<U32Filter> out;
  auto room = [&](std::size_t more) {
    if (out.size() + more > kMaxFilters)
      throw sdk::InvalidArgument(
          "local-port: with remote-port, destination-ip and the exclusions the lists make more "
          "than " +
          std::to_string(kMaxFilters) + " u32 filters; give fewer or wider ranges");
  };

  const auto excluded_ports = matches_of(sel.exclude_ports);
  std::vector<PortMatch> control_local, control_remote;
  for (std::uint16_t p : control.local_ports)
    control_local.push_back({p, 0xffff});
  for (std::uint16_t p : control.remote_ports)
    control_remote.push_back({p, 0xffff});
  const auto local = matches_of(sel.local_ports);
  const auto remote = matches_of(sel.remote_ports);

  for (int family : {AF_INET, AF_INET6}) {
    const std::uint16_t prio = family == AF_INET ? kSparePrio4 : kSparePrio6;
    room(2 * excluded_ports.size() + control_local.size() + control_remote.size() +
         sel.exclude_ips.size());
    for (const PortMatch &p : excluded_ports) {
      Builder a(family, prio, spare_class);
      a.source_port(p);
      out.push_back(a.done(spare));
      Builder b(family, prio, spare_class);
      b.destination_port(p);
      out.push_back(b.done(spare));
    }
    for (const PortMatch &p : control_local) {
      Builder a(family, prio, spare_class);
      a.source_port(p);
      out.push_back(a.done(spare));
    }
    for (const PortMatch &p : control_remote) {
      Builder a(family, prio, spare_class);
      a.destination_port(p);
      out.push_back(a.done(spare));
    }
    for (const IpNet &net : sel.exclude_ips) {
      if (net.family != family) continue;
      Builder a(family, prio, spare_class);
      a.destination(net);
      out.push_back(a.done(spare));
    }
  }

  for (int family : {AF_INET, AF_INET6}) {
    const std::uint16_t prio = family == AF_INET ? kFaultPrio4 : kFaultPrio6;
    std::vector<const IpNet *> dsts;
    for (const IpNet &net : sel.destinations)
      if (net.family == family) dsts.push_back(&net);
    // Destinations of the other family only: this family is not selected.
    if (!sel.destinations.empty() && dsts.empty()) continue;
    if (dsts.empty()) dsts.push_back(nullptr);
    const std::size_t nl = local.empty() ? 1 : local.size();
    const std::size_t nr = remote.empty() ? 1 : remote.size();
    room(nl * nr * dsts.size());
    for (std::size_t i = 0; i < nl; ++i)
      for (std::size_t j = 0; j < nr; ++j)
        for (const IpNet *d : dsts) {
          Builder b(family, prio, fault_class);
          if (sel.protocol) b.protocol(*sel.protocol);
          if (!local.empty()) b.source_port(local[i]);
          if (!remote.empty()) b.destination_port(remote[j]);
          if (d) b.destination(*d);
          out.push_back(b.done(fault));
        }
  }
  return out;
}

int u32_filter_request(int ifindex, std::uint32_t parent, const U32Filter &f, NlMsgPtr &out) {
  RtnlClsPtr cls(rtnl_cls_alloc());
  if (!cls) return -NLE_NOMEM;
  rtnl_tc *tc = TC_CAST(cls.get());
  rtnl_tc_set_ifindex(tc, ifindex);
  rtnl_tc_set_parent(tc, parent);
  int err = rtnl_tc_set_kind(tc, "u32");
  if (err < 0) return err;
  rtnl_cls_set_prio(cls.get(), f.prio);
  rtnl_cls_set_protocol(cls.get(), f.family == AF_INET ? ETH_P_IP : ETH_P_IPV6);
  if ((err = rtnl_u32_set_classid(cls.get(), f.classid)) < 0) return err;
  // A terminal node classifies: without the flag u32 only links onwards.
  if ((err = rtnl_u32_set_cls_terminal(cls.get())) < 0) return err;
  for (const U32Key &k : f.keys)
    if ((err = rtnl_u32_add_key(cls.get(), htonl(k.value), htonl(k.mask), k.offset, 0)) < 0)
      return err;
  nl_msg *msg = nullptr;
  if ((err = rtnl_cls_build_add_request(cls.get(), NLM_F_CREATE | NLM_F_EXCL, &msg)) < 0)
    return err;
  out.reset(msg);
  return 0;
}

}  // namespace blade::network
