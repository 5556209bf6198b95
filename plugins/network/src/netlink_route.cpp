#include "netlink_route.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/classifier.h>
#include <netlink/route/qdisc.h>
#include <netlink/socket.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <blade/plugin.hpp>

namespace blade::network {

void NlSockFree::operator()(nl_sock *s) const {
  nl_socket_free(s);
}
void NlMsgFree::operator()(nl_msg *m) const {
  nlmsg_free(m);
}
void NlCbPut::operator()(nl_cb *c) const {
  nl_cb_put(c);
}
void RtnlQdiscPut::operator()(rtnl_qdisc *q) const {
  rtnl_qdisc_put(q);
}
void RtnlClsPut::operator()(rtnl_cls *c) const {
  rtnl_cls_put(c);
}

std::string netlink_error(int err) {
  return nl_geterror(err);
}

std::string handle_text(std::uint32_t handle) {
  if (handle == TC_H_ROOT) return "root";
  char buf[32];
  if (TC_H_MIN(handle) == 0)
    std::snprintf(buf, sizeof buf, "%x:", TC_H_MAJ(handle) >> 16);
  else
    std::snprintf(buf, sizeof buf, "%x:%x", TC_H_MAJ(handle) >> 16, TC_H_MIN(handle));
  return buf;
}

namespace {

using NlCbPtr = std::unique_ptr<nl_cb, NlCbPut>;

std::vector<std::uint8_t> payload(const nlattr *a) {
  const auto *p = static_cast<const std::uint8_t *>(nla_data(a));
  return {p, p + nla_len(a)};
}

struct DumpState {
  int ifindex = 0;
  std::vector<QdiscDump> *qdiscs = nullptr;
  std::size_t count = 0;
};

int on_qdisc(nl_msg *msg, void *arg) {
  auto *st = static_cast<DumpState *>(arg);
  nlmsghdr *h = nlmsg_hdr(msg);
  if (h->nlmsg_type != RTM_NEWQDISC) return NL_OK;
  const auto *tcm = static_cast<const tcmsg *>(nlmsg_data(h));
  // The kernel dumps every interface's qdiscs; keep the one asked for.
  if (tcm->tcm_ifindex != st->ifindex) return NL_OK;
  nlattr *tb[TCA_MAX + 1] = {};
  if (nlmsg_parse(h, sizeof(tcmsg), tb, TCA_MAX, nullptr) < 0) return NL_OK;
  QdiscDump q;
  q.handle = tcm->tcm_handle;
  q.parent = tcm->tcm_parent;
  if (tb[TCA_KIND]) q.kind = nla_get_string(tb[TCA_KIND]);
  if (tb[TCA_OPTIONS]) {
    q.has_options = true;
    q.options = payload(tb[TCA_OPTIONS]);
  }
  q.has_stab = tb[TCA_STAB] != nullptr;
  st->qdiscs->push_back(std::move(q));
  return NL_OK;
}

int on_counted(nl_msg *msg, void *arg) {
  auto *st = static_cast<DumpState *>(arg);
  const auto *tcm = static_cast<const tcmsg *>(nlmsg_data(nlmsg_hdr(msg)));
  if (tcm->tcm_ifindex == st->ifindex) ++st->count;
  return NL_OK;
}

// How long any wait for the kernel's answer may take.
constexpr time_t kAnswerTimeoutSeconds = 10;

void check_dump(int err, const char *what) {
  if (err < 0)
    throw sdk::FailedPrecondition(std::string("cannot dump the ") + what +
                                  " over rtnetlink: " + netlink_error(err));
}

}  // namespace

NetlinkRoute::NetlinkRoute() : sock_(nl_socket_alloc()) {
  if (!sock_) throw sdk::FailedPrecondition("cannot allocate a netlink socket");
  const int err = nl_connect(sock_.get(), NETLINK_ROUTE);
  if (err < 0)
    throw sdk::FailedPrecondition("cannot open an rtnetlink socket: " + netlink_error(err));
  // A bound on every wait for the kernel's answer: rtnetlink always
  // answers a request it refuses, but a call must not hang the plugin's
  // thread forever should an answer never come (nl_recv then returns 0).
  const timeval limit{kAnswerTimeoutSeconds, 0};
  ::setsockopt(nl_socket_get_fd(sock_.get()), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
}

int NetlinkRoute::request(nl_msg *msg) {
  int err = nl_send_auto(sock_.get(), msg);
  if (err < 0) return err;
  return nl_wait_for_ack(sock_.get());
}

std::vector<QdiscDump> NetlinkRoute::qdiscs(int ifindex) {
  std::vector<QdiscDump> out;
  DumpState st{ifindex, &out, 0};
  tcmsg tcm{};
  tcm.tcm_family = AF_UNSPEC;
  tcm.tcm_ifindex = ifindex;
  check_dump(nl_send_simple(sock_.get(), RTM_GETQDISC, NLM_F_DUMP, &tcm, sizeof tcm), "qdiscs");
  NlCbPtr cb(nl_cb_alloc(NL_CB_DEFAULT));
  if (!cb) throw sdk::FailedPrecondition("cannot allocate a netlink callback");
  nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, on_qdisc, &st);
  check_dump(nl_recvmsgs(sock_.get(), cb.get()), "qdiscs");
  return out;
}

std::optional<QdiscDump> NetlinkRoute::root(int ifindex) {
  for (auto &q : qdiscs(ifindex))
    if (q.parent == TC_H_ROOT) return std::move(q);
  return std::nullopt;
}

std::size_t NetlinkRoute::count(int type, int ifindex, std::uint32_t parent) {
  DumpState st{ifindex, nullptr, 0};
  tcmsg tcm{};
  tcm.tcm_family = AF_UNSPEC;
  tcm.tcm_ifindex = ifindex;
  tcm.tcm_parent = parent;
  const char *what = type == RTM_GETTFILTER ? "filters" : "classes";
  check_dump(nl_send_simple(sock_.get(), type, NLM_F_DUMP, &tcm, sizeof tcm), what);
  NlCbPtr cb(nl_cb_alloc(NL_CB_DEFAULT));
  if (!cb) throw sdk::FailedPrecondition("cannot allocate a netlink callback");
  nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, on_counted, &st);
  check_dump(nl_recvmsgs(sock_.get(), cb.get()), what);
  return st.count;
}

std::size_t NetlinkRoute::filter_count(int ifindex, std::uint32_t parent) {
  return count(RTM_GETTFILTER, ifindex, parent);
}

std::size_t NetlinkRoute::class_count(int ifindex) {
  return count(RTM_GETTCLASS, ifindex, 0);
}

int NetlinkRoute::add_qdisc(int ifindex, std::uint32_t handle, std::uint32_t parent,
                            const std::string &kind, const std::vector<std::uint8_t> *options,
                            int flags) {
  NlMsgPtr msg;
  const int err = qdisc_request(ifindex, handle, parent, kind, options, flags, msg);
  if (err < 0) return err;
  return request(msg.get());
}

int NetlinkRoute::qdisc_request(int ifindex, std::uint32_t handle, std::uint32_t parent,
                                const std::string &kind, const std::vector<std::uint8_t> *options,
                                int flags, NlMsgPtr &out) {
  NlMsgPtr msg(nlmsg_alloc_simple(RTM_NEWQDISC, flags));
  if (!msg) return -NLE_NOMEM;
  tcmsg tcm{};
  tcm.tcm_family = AF_UNSPEC;
  tcm.tcm_ifindex = ifindex;
  tcm.tcm_handle = handle;
  tcm.tcm_parent = parent;
  int err = nlmsg_append(msg.get(), &tcm, sizeof tcm, NLMSG_ALIGNTO);
  if (err >= 0) err = nla_put_string(msg.get(), TCA_KIND, kind.c_str());
  // The options go in as one opaque attribute: the bytes a dump gave (or
  // that netem_options built) are exactly what the kernel parses.
  if (err >= 0 && options)
    err = nla_put(msg.get(), TCA_OPTIONS, static_cast<int>(options->size()), options->data());
  if (err < 0) return err;
  out = std::move(msg);
  return 0;
}

int NetlinkRoute::delete_root(int ifindex) {
  NlMsgPtr msg(nlmsg_alloc_simple(RTM_DELQDISC, 0));
  if (!msg) return -NLE_NOMEM;
  tcmsg tcm{};
  tcm.tcm_family = AF_UNSPEC;
  tcm.tcm_ifindex = ifindex;
  tcm.tcm_parent = TC_H_ROOT;
  const int err = nlmsg_append(msg.get(), &tcm, sizeof tcm, NLMSG_ALIGNTO);
  if (err < 0) return err;
  return request(msg.get());
}

}  // namespace blade::network

namespace blade::network {
namespace {

// Keeps one send well inside the socket's buffers (libnl sets 32 KiB each
// way): the kernel refuses a sendmsg larger than the send buffer, and drops
// answers once the receive buffer is full, and each refusal's answer
// carries the refused message back.
constexpr std::size_t kBatchBytes = 8192;
constexpr std::size_t kBatchMessages = 32;

struct FreeBuf {
  void operator()(unsigned char *p) const { std::free(p); }
};

// Reads answers until the one to `last_seq`; each error answer's sequence
// number says which request of `seqs` it is for.
int read_answers(nl_sock *sock, const std::vector<std::uint32_t> &seqs, std::size_t first,
                 std::uint32_t last_seq, std::vector<int> &results) {
  for (;;) {
    sockaddr_nl peer{};
    unsigned char *raw = nullptr;
    const int n = nl_recv(sock, &peer, &raw, nullptr);
    std::unique_ptr<unsigned char, FreeBuf> buf(raw);
    if (n < 0) return n;
    if (n == 0) return -NLE_AGAIN;  // no answer within kAnswerTimeoutSeconds
    int left = n;
    for (auto *h = reinterpret_cast<nlmsghdr *>(buf.get()); nlmsg_ok(h, left);
         h = nlmsg_next(h, &left)) {
      if (h->nlmsg_type != NLMSG_ERROR) continue;
      const auto *e = static_cast<const nlmsgerr *>(nlmsg_data(h));
      for (std::size_t i = first; i < seqs.size(); ++i)
        if (seqs[i] == h->nlmsg_seq) {
          results[i] = e->error == 0 ? 0 : -nl_syserr2nlerr(-e->error);
          break;
        }
      if (h->nlmsg_seq == last_seq) return 0;
    }
  }
}

}  // namespace

std::vector<int> NetlinkBatch::run() {
  std::vector<int> results(msgs_.size(), 0);
  std::vector<std::uint32_t> seqs(msgs_.size(), 0);
  nl_sock *sock = nl_.sock();
  std::size_t begin = 0;
  while (begin < msgs_.size()) {
    // One send: as many whole messages as fit.
    std::vector<unsigned char> wire;
    std::vector<std::size_t> offsets;
    std::size_t end = begin;
    while (end < msgs_.size() && end - begin < kBatchMessages) {
      nl_msg *m = msgs_[end].get();
      // The batch numbers its own messages (1, 2 ...): a number from the
      // socket's counter would leave libnl expecting answers this reads,
      // and the socket's next request would fail on a sequence mismatch.
      nlmsg_hdr(m)->nlmsg_seq = static_cast<std::uint32_t>(end + 1);
      nl_complete_msg(sock, m);  // port id, NLM_F_REQUEST | NLM_F_ACK
      const nlmsghdr *h = nlmsg_hdr(m);
      const std::size_t len = NLMSG_ALIGN(h->nlmsg_len);
      // Too big for this send: it goes first in the next one.
      if (end > begin && wire.size() + len > kBatchBytes) break;
      seqs[end] = h->nlmsg_seq;
      offsets.push_back(wire.size());
      const auto *bytes = reinterpret_cast<const unsigned char *>(h);
      wire.insert(wire.end(), bytes, bytes + h->nlmsg_len);
      wire.resize(wire.size() + (len - h->nlmsg_len), 0);
      ++end;
    }
    // Successes unanswered but the last: the kernel answers a refusal
    // whatever the flags say, so nothing is lost by not asking.
    for (std::size_t i = 0; i + 1 < offsets.size(); ++i) {
      nlmsghdr h;
      std::memcpy(&h, wire.data() + offsets[i], sizeof h);
      h.nlmsg_flags = static_cast<std::uint16_t>(h.nlmsg_flags & ~NLM_F_ACK);
      std::memcpy(wire.data() + offsets[i], &h, sizeof h);
    }
    int err = nl_sendto(sock, wire.data(), wire.size());
    if (err >= 0) err = read_answers(sock, seqs, begin, seqs[end - 1], results);
    if (err < 0) {
      for (std::size_t i = begin; i < msgs_.size(); ++i)
        if (i >= end || results[i] == 0) results[i] = err;
      return results;
    }
    begin = end;
  }
  return results;
}

}  // namespace blade::network
