#include "nft_netlink.hpp"

#include <endian.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>

#include "../../common/handles.hpp"

namespace blade::network {

std::uint32_t NfnlMessages::begin_message(std::uint16_t type, std::uint16_t flags,
                                          std::uint8_t family, std::uint16_t res_id) {
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
  return seq_;
}

void NfnlMessages::end_message() {
  const auto len = static_cast<std::uint32_t>(buf_.size() - message_at_);
  std::memcpy(buf_.data() + message_at_ + offsetof(nlmsghdr, nlmsg_len), &len, sizeof len);
}

void NfnlMessages::attr(std::uint16_t type, const void *data, std::size_t size) {
  nlattr a{};
  a.nla_len = static_cast<std::uint16_t>(NLA_HDRLEN + size);
  a.nla_type = type;
  put(&a, sizeof a);
  put(data, size);
}

void NfnlMessages::attr_string(std::uint16_t type, const std::string &s) {
  attr(type, s.c_str(), s.size() + 1);
}

void NfnlMessages::attr_be32(std::uint16_t type, std::uint32_t v) {
  v = htobe32(v);
  attr(type, &v, sizeof v);
}

void NfnlMessages::begin_nest(std::uint16_t type) {
  nests_.push_back(buf_.size());
  nlattr a{};
  a.nla_type = static_cast<std::uint16_t>(type | NLA_F_NESTED);
  put(&a, sizeof a);
}

void NfnlMessages::end_nest() {
  const std::size_t at = nests_.back();
  nests_.pop_back();
  const auto len = static_cast<std::uint16_t>(buf_.size() - at);
  std::memcpy(buf_.data() + at + offsetof(nlattr, nla_len), &len, sizeof len);
}

void NfnlMessages::put(const void *data, std::size_t size) {
  const auto *p = static_cast<const char *>(data);
  buf_.insert(buf_.end(), p, p + size);
  buf_.resize(NLMSG_ALIGN(buf_.size()), 0);  // attributes and messages are 4-aligned
}

std::uint16_t nft_message_type(std::uint16_t msg) {
  return static_cast<std::uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | msg);
}

int nfnl_exchange(const NfnlMessages &messages, std::uint32_t seq) {
  plugins::UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER));
  if (!fd) return errno;
  // The answer comes at once; a kernel that never answers must not hang
  // the call.
  const timeval wait{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  const auto &bytes = messages.bytes();
  if (::sendto(fd.get(), bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr *>(&kernel),
               sizeof kernel) < 0)
    return errno;
  alignas(nlmsghdr) char answer[8192];
  for (;;) {
    const ssize_t n = ::recv(fd.get(), answer, sizeof answer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    int left = static_cast<int>(n);
    for (auto *h = reinterpret_cast<nlmsghdr *>(answer); NLMSG_OK(h, left);
         h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type != NLMSG_ERROR) continue;  // a reply before the ACK
      const int err = -static_cast<const nlmsgerr *>(NLMSG_DATA(h))->error;
      if (err != 0) return err;
      if (h->nlmsg_seq == seq) return 0;
    }
  }
}

std::string nftables_missing() {
  {
    plugins::UniqueFd probe(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER));
    if (!probe)
      return "the kernel has no nfnetlink, which nftables needs (a netfilter netlink socket: " +
             std::string(std::strerror(errno)) + "): modprobe nfnetlink nf_tables";
  }
  // The ruleset's generation: the smallest question nf_tables answers.
  NfnlMessages m;
  const std::uint32_t seq =
      m.begin_message(nft_message_type(NFT_MSG_GETGEN), NLM_F_REQUEST | NLM_F_ACK, AF_UNSPEC, 0);
  m.end_message();
  const int err = nfnl_exchange(m, seq);
  if (err == 0) return "";
  if (err == EPERM)
    return "nftables refused this process (Operation not permitted): it needs CAP_NET_ADMIN";
  return "the kernel has no nf_tables (nfnetlink answered " + std::string(std::strerror(err)) +
         " for its subsystem): modprobe nf_tables";
}

}  // namespace blade::network
