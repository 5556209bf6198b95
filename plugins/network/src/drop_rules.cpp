#include "drop_rules.hpp"

#include <net/if.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "nft_string_match.hpp"

namespace blade::network {
namespace {

constexpr int kWhole = 10000;  // percent in hundredths: numgen's modulus

std::string flag_text(const sdk::Request &req, std::string_view name) {
  std::string v(req.flag(name).value_or(""));
  const auto first = v.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return v.substr(first, v.find_last_not_of(" \t") - first + 1);
}

// Sorted, overlapping and adjacent ranges merged: an nft interval set
// refuses overlapping elements, and "80,80" or "1-100,50-60" mean no more
// than their union.
std::vector<PortRange> merged(std::vector<PortRange> ports) {
  std::sort(ports.begin(), ports.end(),
            [](const PortRange &a, const PortRange &b) { return a.first < b.first; });
  std::vector<PortRange> out;
  for (const PortRange &r : ports) {
    if (!out.empty() && r.first <= out.back().last + 1u) {
      out.back().last = std::max(out.back().last, r.last);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

bool contains(const IpNet &outer, const IpNet &inner) {
  if (outer.family != inner.family || outer.prefix > inner.prefix) return false;
  for (int bit = 0; bit < outer.prefix; ++bit) {
    const auto byte = static_cast<std::size_t>(bit / 8);
    const unsigned mask = 0x80u >> (bit % 8);
    if ((outer.addr[byte] & mask) != (inner.addr[byte] & mask)) return false;
  }
  return true;
}

// Networks inside another of the list dropped (two CIDR blocks either nest
// or are disjoint, so what is left never overlaps), duplicates too.
std::vector<IpNet> merged(const std::vector<IpNet> &nets) {
  std::vector<IpNet> out;
  for (std::size_t i = 0; i < nets.size(); ++i) {
    bool covered = false;
    for (std::size_t j = 0; j < nets.size() && !covered; ++j) {
      if (i == j || !contains(nets[j], nets[i])) continue;
      // Of two equal networks the first is kept.
      covered = !(nets[j] == nets[i]) || j < i;
    }
    if (!covered) out.push_back(nets[i]);
  }
  return out;
}

std::vector<IpNet> of_family(const std::vector<IpNet> &nets, int family) {
  std::vector<IpNet> out;
  for (const IpNet &n : nets)
    if (n.family == family) out.push_back(n);
  return out;
}

template <class T>
std::string set_of(const std::vector<T> &items) {
  std::string out = "{ ";
  for (std::size_t i = 0; i < items.size(); ++i)
    out += (i ? ", " : "") + items[i].text();
  return out + " }";
}

std::string port_set(const std::vector<std::uint16_t> &ports) {
  std::string out = "{ ";
  for (std::size_t i = 0; i < ports.size(); ++i)
    out += (i ? ", " : "") + std::to_string(ports[i]);
  return out + " }";
}

int parse_percent(const sdk::Request &req) {
  const std::string v = flag_text(req, "percent");
  if (v.empty()) return kWhole;
  double p = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), p);
  if (ec != std::errc() || end != v.data() + v.size() || !std::isfinite(p) || p < 0 || p > 100)
    throw sdk::InvalidArgument("percent: must be a number from 0 to 100, got '" + v + "'");
  return static_cast<int>(std::lround(p * 100));
}

// The name of an interface of the daemon's network namespace, checked so it
// can be quoted in nft text as it is (no quote, backslash or control byte).
std::string parse_interface(const sdk::Request &req) {
  const std::string name = flag_text(req, "interface");
  if (name.empty()) return name;
  const bool printable = std::all_of(name.begin(), name.end(), [](char c) {
    return c > ' ' && c < 0x7f && c != '"' && c != '\\' && c != '/';
  });
  if (name.size() >= IFNAMSIZ || !printable)
    throw sdk::InvalidArgument("interface: not an interface name: '" + name + "'");
  if (::if_nametoindex(name.c_str()) == 0)
    throw sdk::InvalidArgument("interface: no interface named '" + name +
                               "' in the daemon's network namespace");
  return name;
}

// One rule's matches for the selected traffic of one address family (4, 6,
// or 0 when no address is selected), up to the verdict.
std::string drop_matches(const DropSpec &s, int family, bool outgoing) {
  std::string m;
  auto add = [&](const std::string &part) { m += (m.empty() ? "" : " ") + part; };
  if (!s.interface.empty())
    add(std::string(outgoing ? "oifname" : "iifname") + " \"" + s.interface + "\"");
  const int af = family == 4 ? AF_INET : AF_INET6;
  const std::string ip = family == 4 ? "ip" : "ip6";
  if (family != 0 && !s.source_ips.empty())
    add(ip + " saddr " + set_of(of_family(s.source_ips, af)));
  if (family != 0 && !s.destination_ips.empty())
    add(ip + " daddr " + set_of(of_family(s.destination_ips, af)));
  if (s.protocol == "tcp" || s.protocol == "udp") {
    add("meta l4proto " + s.protocol);
  } else if (s.protocol == "icmp") {
    add(family == 4   ? "meta l4proto icmp"
        : family == 6 ? "meta l4proto ipv6-icmp"
                      : "meta l4proto { icmp, ipv6-icmp }");
  } else {
    // No protocol is ChaosBlade's meaning: TCP and UDP, with or without
    // ports (its rules are `-p tcp` and `-p udp`, never ICMP).
    add("meta l4proto { tcp, udp }");
  }
  if (!s.source_ports.empty()) add("th sport " + set_of(s.source_ports));
  if (!s.destination_ports.empty()) add("th dport " + set_of(s.destination_ports));
  // Fractions of a percent count: the modulus is 10000, not 100.
  if (s.per_10000 < kWhole)
    add("numgen random mod " + std::to_string(kWhole) + " < " + std::to_string(s.per_10000));
  return m;
}

}  // namespace

const char *drop_chain_name(bool outgoing) { return outgoing ? "drop_out" : "drop_in"; }
const char *drop_hook_name(bool outgoing) { return outgoing ? "output" : "input"; }

DropSpec parse_drop(const sdk::Request &req) {
  DropSpec s;
  const std::string traffic = flag_text(req, "network-traffic");
  if (traffic == "out") {
    s.incoming = false;
  } else if (traffic == "in") {
    s.outgoing = false;
  } else if (!traffic.empty()) {
    throw sdk::InvalidArgument("network-traffic: must be in or out, got '" + traffic + "'");
  }
  s.source_ips = merged(request_ips(req, "source-ip"));
  s.destination_ips = merged(request_ips(req, "destination-ip"));
  s.source_ports = merged(request_ports(req, "source-port"));
  s.destination_ports = merged(request_ports(req, "destination-port"));
  s.protocol = flag_text(req, "protocol");
  if (!s.protocol.empty() && s.protocol != "tcp" && s.protocol != "udp" && s.protocol != "icmp")
    throw sdk::InvalidArgument("protocol: must be tcp, udp or icmp, got '" + s.protocol + "'");
  if (s.protocol == "icmp" && (!s.source_ports.empty() || !s.destination_ports.empty()))
    throw sdk::InvalidArgument(
        "protocol: icmp has no ports; with source-port or destination-port give tcp or udp, "
        "or no protocol (both)");
  s.interface = parse_interface(req);
  s.per_10000 = parse_percent(req);
  // As given, spaces too: they are bytes of the pattern.
  s.string_pattern = std::string(req.flag("string-pattern").value_or(""));
  if (s.string_pattern.size() > kMaxStringPattern)
    throw sdk::InvalidArgument("string-pattern: at most " + std::to_string(kMaxStringPattern) +
                               " bytes (the kernel's string match), got " +
                               std::to_string(s.string_pattern.size()));
  if (s.source_ips.empty() && s.destination_ips.empty() && s.source_ports.empty() &&
      s.destination_ports.empty() && s.string_pattern.empty()) {
    // As in ChaosBlade: a drop of everything is never what a missing flag
    // should mean.
    throw sdk::InvalidArgument(
        "source-ip: give at least one of source-ip, destination-ip, source-port, "
        "destination-port or string-pattern (e.g. --source-ip 0.0.0.0/0,::/0 for every "
        "address)");
  }
  // An address family with source but no destination address (or the
  // reverse) can match nothing: say so rather than add a rule that never
  // drops.
  if (!s.source_ips.empty() && !s.destination_ips.empty()) {
    bool any = false;
    for (int af : {AF_INET, AF_INET6})
      any = any ||
            (!of_family(s.source_ips, af).empty() && !of_family(s.destination_ips, af).empty());
    if (!any)
      throw sdk::InvalidArgument(
          "destination-ip: no address of the same family (IPv4 or IPv6) as a source-ip, so "
          "nothing could match");
  }
  return s;
}

std::string drop_table_name(std::string_view uid) {
  const bool word =
      !uid.empty() && uid.size() <= 64 && std::all_of(uid.begin(), uid.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_';
      });
  if (!word)
    throw sdk::FailedPrecondition("experiment uid '" + std::string(uid) +
                                  "' cannot name an nftables table");
  return "blade_" + std::string(uid);
}

bool is_drop_table_name(std::string_view name) {
  if (!name.starts_with("blade_")) return false;
  try {
    return drop_table_name(name.substr(6)) == name;
  } catch (const sdk::Error &) {
    return false;
  }
}

std::string drop_ruleset(const DropSpec &s, const std::string &table, const ControlPath &path) {
  const std::string where = std::string(kDropFamily) + " " + table;
  // Declared, emptied, then defined: a table a retried create left is
  // replaced whole, in the same transaction.
  std::string t = "add table " + where + "\ndelete table " + where + "\n";
  t += "table " + where + " {\n";
  // One base chain per direction asked, the same rules in each.
  for (const bool outgoing : {false, true}) {
    if (!(outgoing ? s.outgoing : s.incoming)) continue;
    t += std::string("  chain ") + drop_chain_name(outgoing) + " {\n";
    t += std::string("    type filter hook ") + drop_hook_name(outgoing) + " priority " +
         std::to_string(kDropPriority) + "; policy accept;\n";
    const auto &local = path.local_ports;
    const auto &remote = path.remote_ports;
    const char *local_dir = outgoing ? "sport" : "dport";
    const char *remote_dir = outgoing ? "dport" : "sport";
    if (!local.empty()) {
      // To and from the daemon's ports and this host's sshd.
      t += std::string("    tcp ") + local_dir + " " + port_set(local) + " accept\n";
      // A client on this host talks to the daemon over lo, where both ends'
      // packets pass both hooks: the daemon's side is the other port field.
      t += std::string("    ") + (outgoing ? "oifname" : "iifname") + " \"lo\" tcp " +
           remote_dir + " " + port_set(local) + " accept\n";
    }
    if (!remote.empty())
      t += std::string("    tcp ") + remote_dir + " " + port_set(remote) + " accept\n";
    const std::string verdict =
        s.string_pattern.empty() ? std::string("drop") : std::string("jump ") + kPayloadChain;
    auto rule = [&](int family) {
      const std::string m = drop_matches(s, family, outgoing);
      t += "    " + m + (m.empty() ? "" : " ") + verdict + "\n";
    };
    const bool by_ip = !s.source_ips.empty() || !s.destination_ips.empty();
    for (int family : {4, 6}) {
      if (!by_ip) break;
      const int af = family == 4 ? AF_INET : AF_INET6;
      if (!s.source_ips.empty() && of_family(s.source_ips, af).empty()) continue;
      if (!s.destination_ips.empty() && of_family(s.destination_ips, af).empty()) continue;
      rule(family);
    }
    if (!by_ip) rule(0);
    t += "  }\n";
  }
  if (!s.string_pattern.empty()) t += std::string("  chain ") + kPayloadChain + " {\n  }\n";
  t += "}\n";
  return t;
}

nlohmann::json drop_spec_json(const DropSpec &s) {
  auto texts = [](const auto &items) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto &i : items)
      out.push_back(i.text());
    return out;
  };
  nlohmann::json j = {{"network_traffic", s.incoming && s.outgoing ? "in and out"
                                          : s.outgoing              ? "out"
                                                                    : "in"},
                      {"percent", static_cast<double>(s.per_10000) / 100.0}};
  if (!s.source_ips.empty()) j["source_ip"] = texts(s.source_ips);
  if (!s.destination_ips.empty()) j["destination_ip"] = texts(s.destination_ips);
  if (!s.source_ports.empty()) j["source_port"] = texts(s.source_ports);
  if (!s.destination_ports.empty()) j["destination_port"] = texts(s.destination_ports);
  j["protocol"] = s.protocol.empty() ? nlohmann::json("tcp and udp") : nlohmann::json(s.protocol);
  if (!s.interface.empty()) j["interface"] = s.interface;
  if (!s.string_pattern.empty()) j["string_pattern"] = s.string_pattern;
  return j;
}

}  // namespace blade::network
