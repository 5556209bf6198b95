#include "nft_string_match.hpp"

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_tables_compat.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/xt_string.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include <blade/plugin.hpp>
#include <nlohmann/json.hpp>

#include "nft_netlink.hpp"

namespace blade::network {
namespace {

static_assert(sizeof(xt_string_info::pattern) == kMaxStringPattern);

// The batch, and the sequence number of its rule message, whose ACK says
// the rule is in.
struct RuleBatch {
  NfnlMessages batch;
  std::uint32_t rule_seq = 0;
};

RuleBatch rule_batch(const std::string &table, const std::string &chain, std::string_view pattern) {
  xt_string_info info{};
  std::strncpy(info.algo, "bm", sizeof info.algo - 1);
  info.from_offset = 0;
  info.to_offset = UINT16_MAX;  // the whole packet, as iptables' default
  info.patlen = static_cast<std::uint8_t>(pattern.size());
  std::memcpy(info.pattern, pattern.data(), pattern.size());

  RuleBatch out;
  NfnlMessages &b = out.batch;
  b.begin_message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
  b.end_message();
  out.rule_seq =
      b.begin_message(nft_message_type(NFT_MSG_NEWRULE),
                      NLM_F_REQUEST | NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK, NFPROTO_INET, 0);
  b.attr_string(NFTA_RULE_TABLE, table);
  b.attr_string(NFTA_RULE_CHAIN, chain);
  b.begin_nest(NFTA_RULE_EXPRESSIONS);
  // match: xt_string, revision 1 (the one with flags), its info verbatim.
  b.begin_nest(NFTA_LIST_ELEM);
  b.attr_string(NFTA_EXPR_NAME, "match");
  b.begin_nest(NFTA_EXPR_DATA);
  b.attr_string(NFTA_MATCH_NAME, "string");
  b.attr_be32(NFTA_MATCH_REV, 1);
  b.attr(NFTA_MATCH_INFO, &info, sizeof info);
  b.end_nest();
  b.end_nest();
  // immediate: the verdict drop.
  b.begin_nest(NFTA_LIST_ELEM);
  b.attr_string(NFTA_EXPR_NAME, "immediate");
  b.begin_nest(NFTA_EXPR_DATA);
  b.attr_be32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
  b.begin_nest(NFTA_IMMEDIATE_DATA);
  b.begin_nest(NFTA_DATA_VERDICT);
  b.attr_be32(NFTA_VERDICT_CODE, NF_DROP);
  b.end_nest();
  b.end_nest();
  b.end_nest();
  b.end_nest();
  b.end_nest();
  b.end_message();
  b.begin_message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
  b.end_message();
  return out;
}

[[noreturn]] void refused(int err) {
  std::string why =
      "the kernel refused the string-pattern rule: " + std::string(std::strerror(err));
  if (err == EOPNOTSUPP || err == ENOENT || err == EPROTONOSUPPORT)
    why +=
        " (it needs nf_tables' compat expression, nft_compat, and the xt_string match: "
        "modprobe nft_compat xt_string)";
  throw sdk::FailedPrecondition(why);
}

}  // namespace

void add_string_drop_rule(const std::string &table, const std::string &chain,
                          std::string_view pattern) {
  if (pattern.empty() || pattern.size() > kMaxStringPattern)
    throw sdk::InvalidArgument("string-pattern: must be 1 to 128 bytes");
  const RuleBatch batch = rule_batch(table, chain, pattern);
  if (const int err = nfnl_exchange(batch.batch, batch.rule_seq); err != 0) refused(err);
}

std::string string_drop_rule_text(std::string_view pattern) {
  return "xt match string " + nlohmann::json(std::string(pattern)).dump() +
         " (Boyer-Moore, bytes 0-65535 of each packet) drop";
}

}  // namespace blade::network
