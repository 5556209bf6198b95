// The rtnetlink conversation of the netem family, over libnl: one
// NETLINK_ROUTE socket, owners for libnl's objects, and the few requests
// libnl-route has no object for (a qdisc dump that keeps each qdisc's
// TCA_OPTIONS as the kernel wrote them, and a qdisc added from such raw
// options, which is how a prior root qdisc is put back byte for byte).
// No `tc` is ever run: everything here is a netlink message.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct nl_sock;
struct nl_msg;
struct nl_cb;
struct rtnl_qdisc;
struct rtnl_cls;

namespace blade::network {

struct NlSockFree {
  void operator()(nl_sock *s) const;
};
struct NlMsgFree {
  void operator()(nl_msg *m) const;
};
struct NlCbPut {
  void operator()(nl_cb *c) const;
};
struct RtnlQdiscPut {
  void operator()(rtnl_qdisc *q) const;
};
struct RtnlClsPut {
  void operator()(rtnl_cls *c) const;
};
using NlMsgPtr = std::unique_ptr<nl_msg, NlMsgFree>;
using RtnlQdiscPtr = std::unique_ptr<rtnl_qdisc, RtnlQdiscPut>;
using RtnlClsPtr = std::unique_ptr<rtnl_cls, RtnlClsPut>;

// A qdisc as the kernel dumps it (RTM_NEWQDISC): what a restore needs.
struct QdiscDump {
  std::string kind;
  std::uint32_t handle = 0;
  std::uint32_t parent = 0;
  bool has_options = false;
  std::vector<std::uint8_t> options;  // the TCA_OPTIONS payload, as dumped
  // A size table (tc ... stab): its dump lacks the table itself, so a qdisc
  // with one could not be put back as it was.
  bool has_stab = false;
};

// "b1ad:" / "b1ad:4" / "root" as tc writes handles.
std::string handle_text(std::uint32_t handle);

class NetlinkRoute {
 public:
  // Connects a NETLINK_ROUTE socket in the calling thread's network
  // namespace; FailedPrecondition when that fails.
  NetlinkRoute();

  nl_sock *sock() const { return sock_.get(); }

  // Every qdisc of `ifindex` visible in a dump (not the kernel's invisible
  // defaults under a classful parent).
  std::vector<QdiscDump> qdiscs(int ifindex);
  // The root qdisc of `ifindex`; nullopt when the interface has none (gone).
  std::optional<QdiscDump> root(int ifindex);
  // How many filters hang at `parent` of `ifindex` / classes it has.
  std::size_t filter_count(int ifindex, std::uint32_t parent);
  std::size_t class_count(int ifindex);

  // A qdisc from raw parts (RTM_NEWQDISC with `flags`); 0 or a negative
  // libnl error (-NLE_OBJ_NOTFOUND: the kernel knows no such kind).
  int add_qdisc(int ifindex, std::uint32_t handle, std::uint32_t parent, const std::string &kind,
                const std::vector<std::uint8_t> *options, int flags);
  // The same request built, not sent (for a NetlinkBatch): 0 or a negative
  // libnl error, `out` set on success.
  static int qdisc_request(int ifindex, std::uint32_t handle, std::uint32_t parent,
                           const std::string &kind, const std::vector<std::uint8_t> *options,
                           int flags, NlMsgPtr &out);
  // Deletes the root qdisc, which gives the interface its default back.
  int delete_root(int ifindex);

  // Sends a request and waits for the kernel's answer: 0 or a negative
  // libnl error.
  int request(nl_msg *msg);

 private:
  std::size_t count(int type, int ifindex, std::uint32_t parent);

  std::unique_ptr<nl_sock, NlSockFree> sock_;
};

// Requests sent together: as few sendmsg calls as fit the socket's buffers
// (one for a usual tree), instead of one request and one wait per qdisc and
// filter. The kernel runs the messages of one sendmsg in order, each as if
// sent alone, and answers an error for any it refuses, naming its sequence
// number; only the last message of each send asks for an ack on success, so
// its answer is the end of the kernel's answers to that send.
class NetlinkBatch {
 public:
  explicit NetlinkBatch(NetlinkRoute &nl) : nl_(nl) {}

  // Queues a built request (rtnl_*_build_add_request, qdisc_request ...).
  void add(NlMsgPtr msg) { msgs_.push_back(std::move(msg)); }
  std::size_t size() const { return msgs_.size(); }

  // Sends every queued request and reads the answers: one per request, in
  // the order added, 0 or a negative libnl error. A send or receive that
  // fails as a whole gives that error to each request it carried and to
  // every one after it (none of those was sent).
  std::vector<int> run();

 private:
  NetlinkRoute &nl_;
  std::vector<NlMsgPtr> msgs_;
};

// libnl's text for a negative libnl error.
std::string netlink_error(int err);

}  // namespace blade::network
