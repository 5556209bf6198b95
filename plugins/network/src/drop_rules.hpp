// What a `network drop` asks for, parsed and checked from the request, and
// the nftables ruleset that does it: one table of family inet named for the
// experiment, one base chain ahead of ordinary filter chains, the control
// path accepted first, then the drop rules. The text is built only from the
// parsed values (numbers, addresses re-printed by inet_ntop, the name of an
// interface that exists), so no string of the request reaches libnftables
// as it was given.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <blade/plugin.hpp>
#include <nlohmann/json.hpp>

#include "control_path.hpp"
#include "net_selectors.hpp"

namespace blade::network {

inline constexpr const char *kDropFamily = "inet";
// Ahead of the filter priority (0) and of chains a distribution adds at
// it, behind conntrack (-200), so established flows are tracked as usual.
inline constexpr int kDropPriority = -10;

struct DropSpec {
  // network-traffic in: the input hook; out: the output hook; not given:
  // both, as ChaosBlade drops in its INPUT and OUTPUT chains alike.
  bool incoming = true;
  bool outgoing = true;
  std::vector<IpNet> source_ips, destination_ips;
  std::vector<PortRange> source_ports, destination_ports;
  // "tcp", "udp" or "icmp" (icmp and icmpv6); "" is TCP and UDP, the two
  // ChaosBlade drops whatever the other selectors.
  std::string protocol;
  std::string interface;  // "" or the name of an interface that exists
  int per_10000 = 10000;  // the share dropped, in hundredths of a percent
  // Bytes the packet must hold (nft_string_match.hpp); "" for none. Then the
  // drop rules jump to kPayloadChain, whose one rule matches it and drops.
  std::string string_pattern;
};

inline constexpr const char *kPayloadChain = "drop_payload";

// The base chain of one direction and its hook: drop_in on input,
// drop_out on output.
const char *drop_chain_name(bool outgoing);
const char *drop_hook_name(bool outgoing);

// Throws sdk::InvalidArgument "<flag>: ..." on bad input or no selector.
DropSpec parse_drop(const sdk::Request &req);

// "blade_<uid>": the experiment's table, so destroy and recovery find it
// by the uid alone. Throws sdk::FailedPrecondition for a uid that is not
// letters, digits and underscores (it could not name an nft table).
std::string drop_table_name(std::string_view uid);

// True for a name drop_table_name can make (a record's table is only
// deleted when it is one of ours).
bool is_drop_table_name(std::string_view name);

// One transaction: the table made empty if a retried create left one, then
// filled. With a string pattern, kPayloadChain is left empty here (no
// effect yet): its rule is added by add_string_drop_rule.
std::string drop_ruleset(const DropSpec &spec, const std::string &table, const ControlPath &path);

// The spec as the result reports it (sets normalised, percent as applied).
nlohmann::json drop_spec_json(const DropSpec &spec);

}  // namespace blade::network
