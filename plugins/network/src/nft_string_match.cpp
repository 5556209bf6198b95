#include "nft_string_match.hpp"

#include <endian.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_tables_compat.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/xt_string.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include <blade/plugin.hpp>
#include <nlohmann/json.hpp>

#include "../../common/handles.hpp"

namespace blade::network {
namespace {

static_assert(sizeof(xt_string_info::pattern) == kMaxStringPattern);

// Netlink messages of one nfnetlink batch, built in one buffer: each
// message's length and each nested attribute's length are filled in when
// it ends.
class Batch {
 public:
  void begin_message(std::uint16_t type, std::uint16_t flags, std::uint8_t family,
                     std::uint16_t res_id) {
    message_at_ = buf_.size();
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    h.nlmsg_seq = ++seq_;
    put(&h, sizeof h);
    nfgenmsg g{};
    g.nfgen_family = family;
    g.version = NFNETLINK_V0;
    g.res_id = htobe16(res_id);
    put(&g, sizeof g);
  }
  void end_message() {
    const auto len = static_cast<std::uint32_t>(buf_.size() - message_at_);
    std::memcpy(buf_.data() + message_at_ + offsetof(nlmsghdr, nlmsg_len), &len, sizeof len);
  }
  void attr(std::uint16_t type, const void *data, std::size_t size) {
    nlattr a{};
    a.nla_len = static_cast<std::uint16_t>(NLA_HDRLEN + size);
    a.nla_type = type;
    put(&a, sizeof a);
    put(data, size);
  }
  void attr_string(std::uint16_t type, const std::string &s) {
    attr(type, s.c_str(), s.size() + 1);
  }
  void attr_be32(std::uint16_t type, std::uint32_t v) {
    v = htobe32(v);
    attr(type, &v, sizeof v);
  }
  void begin_nest(std::uint16_t type) {
    nests_.push_back(buf_.size());
    nlattr a{};
    a.nla_type = static_cast<std::uint16_t>(type | NLA_F_NESTED);
    put(&a, sizeof a);
  }
  void end_nest() {
    const std::size_t at = nests_.back();
    nests_.pop_back();
    const auto len = static_cast<std::uint16_t>(buf_.size() - at);
    std::memcpy(buf_.data() + at + offsetof(nlattr, nla_len), &len, sizeof len);
  }
  const std::vector<char> &bytes() const { return buf_; }
  std::uint32_t seq() const { return seq_; }

 private:
  void put(const void *data, std::size_t size) {
    const auto *p = static_cast<const char *>(data);
    buf_.insert(buf_.end(), p, p + size);
    buf_.resize(NLMSG_ALIGN(buf_.size()), 0);  // attributes and messages are 4-aligned
  }

  std::vector<char> buf_;
  std::vector<std::size_t> nests_;
  std::size_t message_at_ = 0;
  std::uint32_t seq_ = 0;
};

constexpr std::uint16_t kNftablesMsg(std::uint16_t msg) {
  return static_cast<std::uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | msg);
}

// The batch, and the sequence number of its rule message, whose ACK says
// the rule is in.
struct RuleBatch {
  Batch batch;
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
  Batch &b = out.batch;
  b.begin_message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
  b.end_message();
  b.begin_message(kNftablesMsg(NFT_MSG_NEWRULE),
                  NLM_F_REQUEST | NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK, NFPROTO_INET, 0);
  out.rule_seq = b.seq();
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
  plugins::UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER));
  if (!fd) refused(errno);
  // The answer comes at once; a kernel that never answers must not hang
  // the create.
  const timeval wait{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  const auto &bytes = batch.batch.bytes();
  if (::sendto(fd.get(), bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr *>(&kernel),
               sizeof kernel) < 0)
    refused(errno);
  // The rule's ACK (error 0) or an error: the rule's, or the batch's (an
  // error message of another sequence number).
  alignas(nlmsghdr) char answer[8192];
  for (;;) {
    const ssize_t n = ::recv(fd.get(), answer, sizeof answer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) refused(errno);
    int left = static_cast<int>(n);
    for (auto *h = reinterpret_cast<nlmsghdr *>(answer); NLMSG_OK(h, left);
         h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type != NLMSG_ERROR) continue;
      const int err = -static_cast<const nlmsgerr *>(NLMSG_DATA(h))->error;
      if (err != 0) refused(err);
      if (h->nlmsg_seq == batch.rule_seq) return;
    }
  }
}

std::string string_drop_rule_text(std::string_view pattern) {
  return "xt match string " + nlohmann::json(std::string(pattern)).dump() +
         " (Boyer-Moore, bytes 0-65535 of each packet) drop";
}

}  // namespace blade::network
