// A rule that drops packets holding a byte string, added to a chain of an
// nftables table through nfnetlink directly. nftables' own language has no
// substring match (only bytes at a fixed offset), but nf_tables carries
// x_tables matches in its compat expression, and the kernel's xt_string
// match (what `iptables -m string` uses) searches the whole packet. No
// iptables or nft program is run: the plugin builds the netlink messages.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace blade::network {

// xt_string's limit on a pattern, in bytes.
inline constexpr std::size_t kMaxStringPattern = 128;

// Appends `<xt_string match of pattern, Boyer-Moore, bytes 0-65535 of each
// packet> drop` to `chain` of table `table` (family inet), in one nfnetlink
// transaction. Throws sdk::FailedPrecondition naming what the kernel
// refused (a kernel without nft_compat or xt_string says so).
void add_string_drop_rule(const std::string &table, const std::string &chain,
                          std::string_view pattern);

// The rule as the result describes it.
std::string string_drop_rule_text(std::string_view pattern);

}  // namespace blade::network
