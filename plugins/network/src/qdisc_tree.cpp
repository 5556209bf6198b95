#include "qdisc_tree.hpp"

#include <linux/pkt_sched.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/prio.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/tc.h>

#include <cstdio>

#include <blade/failpoint.hpp>
#include <blade/plugin.hpp>

namespace blade::network {
namespace {

std::string to_hex(const std::vector<std::uint8_t> &bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 0xf];
  }
  return out;
}

std::vector<std::uint8_t> from_hex(const std::string &text) {
  std::vector<std::uint8_t> out;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (std::size_t i = 0; i + 1 < text.size(); i += 2) {
    const int hi = nibble(text[i]), lo = nibble(text[i + 1]);
    if (hi < 0 || lo < 0) return {};
    out.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
  }
  return out;
}

std::string module_of(const std::string &kind) {
  return (kind == "u32" ? "cls_" : "sch_") + kind;
}

[[noreturn]] void refused(int err, const std::string &kind, const std::string &step) {
  // The kernel answers ENOENT (libnl: object not found) for a qdisc or
  // classifier kind it does not know, after trying to load its module.
  if (err == -NLE_OBJ_NOTFOUND) {
    const std::string mod = module_of(kind);
    throw sdk::FailedPrecondition(
        mod + " is not available: modprobe " + mod + " (the kernel has no " + kind + " " +
        (kind == "u32" ? "classifier" : "qdisc") + "; nothing was changed)");
  }
  throw sdk::FailedPrecondition("the kernel refused " + step + ": " + netlink_error(err) +
                                " (nothing was changed)");
}

// The requests of the tree, built to be sent together (NetlinkBatch).
int prio_request(int ifindex, NlMsgPtr &out) {
  RtnlQdiscPtr q(rtnl_qdisc_alloc());
  if (!q) return -NLE_NOMEM;
  rtnl_tc *tc = TC_CAST(q.get());
  rtnl_tc_set_ifindex(tc, ifindex);
  rtnl_tc_set_parent(tc, TC_H_ROOT);
  rtnl_tc_set_handle(tc, kBladeRoot);
  int err = rtnl_tc_set_kind(tc, "prio");
  if (err < 0) return err;
  rtnl_qdisc_prio_set_bands(q.get(), kPrioBands);
  // prio's usual map (bands 0-2): nothing reaches band 4 but by a filter.
  std::uint8_t map[] = QDISC_PRIO_DEFAULT_PRIOMAP;
  if ((err = rtnl_qdisc_prio_set_priomap(q.get(), map, sizeof map)) < 0) return err;
  nl_msg *msg = nullptr;
  if ((err = rtnl_qdisc_build_add_request(q.get(), NLM_F_CREATE | NLM_F_REPLACE, &msg)) < 0)
    return err;
  out.reset(msg);
  return 0;
}

int tbf_request(int ifindex, std::uint32_t handle, std::uint32_t parent, const TbfParams &p,
                int flags, NlMsgPtr &out) {
  RtnlQdiscPtr q(rtnl_qdisc_alloc());
  if (!q) return -NLE_NOMEM;
  rtnl_tc *tc = TC_CAST(q.get());
  rtnl_tc_set_ifindex(tc, ifindex);
  rtnl_tc_set_parent(tc, parent);
  rtnl_tc_set_handle(tc, handle);
  int err = rtnl_tc_set_kind(tc, "tbf");
  if (err < 0) return err;
  rtnl_qdisc_tbf_set_rate(q.get(), static_cast<int>(p.rate_bytes), static_cast<int>(p.burst), 0);
  if ((err = rtnl_qdisc_tbf_set_limit_by_latency(q.get(), static_cast<int>(p.latency_us))) < 0)
    return err;
  nl_msg *msg = nullptr;
  if ((err = rtnl_qdisc_build_add_request(q.get(), flags, &msg)) < 0) return err;
  out.reset(msg);
  return 0;
}

// The fault's own qdisc (netem or tbf) at `handle` under `parent`.
int shaper_request(int ifindex, std::uint32_t handle, std::uint32_t parent, const Shaping &s,
                   int flags, NlMsgPtr &out) {
  if (s.kind == "tbf") return tbf_request(ifindex, handle, parent, s.tbf, flags, out);
  // netem by hand: libnl-route's netem has no 64-bit delay (TCA_NETEM_LATENCY64).
  const auto options = netem_options(s.netem);
  return NetlinkRoute::qdisc_request(ifindex, handle, parent, "netem", &options, flags, out);
}

int put_back(NetlinkRoute &nl, int ifindex, const PriorRoot &prior) {
  if (prior.is_default()) return nl.delete_root(ifindex);
  return nl.add_qdisc(ifindex, prior.handle, TC_H_ROOT, prior.kind,
                      prior.has_options ? &prior.options : nullptr, NLM_F_CREATE | NLM_F_REPLACE);
}

}  // namespace

PriorRoot PriorRoot::of(const QdiscDump &q) {
  PriorRoot p;
  p.kind = q.kind;
  p.handle = q.handle;
  p.parent = q.parent;
  p.has_options = q.has_options;
  p.options = q.options;
  return p;
}

nlohmann::json PriorRoot::to_json() const {
  nlohmann::json j = {{"kind", kind},
                      {"handle", handle},
                      {"handle_text", handle_text(handle)},
                      {"parent", parent},
                      {"default", is_default()}};
  if (has_options) j["options_hex"] = to_hex(options);
  return j;
}

PriorRoot PriorRoot::from_json(const nlohmann::json &j) {
  PriorRoot p;
  if (!j.is_object()) return p;
  if (j.contains("kind") && j["kind"].is_string()) p.kind = j["kind"];
  if (j.contains("handle") && j["handle"].is_number_unsigned()) p.handle = j["handle"];
  if (j.contains("parent") && j["parent"].is_number_unsigned()) p.parent = j["parent"];
  if (j.contains("options_hex") && j["options_hex"].is_string()) {
    p.has_options = true;
    p.options = from_hex(j["options_hex"]);
  }
  if (p.kind.empty()) p.handle = 0;
  return p;
}

std::vector<std::string> TreePlan::modules() const {
  std::vector<std::string> out;
  if (filtered) out.push_back("sch_prio");
  out.push_back(module_of(shaping.kind));
  if (filtered) out.push_back("cls_u32");
  return out;
}

nlohmann::json TreePlan::describe() const {
  nlohmann::json j;
  if (!filtered) {
    j["root"] = {{"kind", shaping.kind}, {"handle", handle_text(kBladeRoot)}};
    j["filters"] = nlohmann::json::array();
    j["note"] = "every packet the interface sends goes through " + shaping.kind;
    return j;
  }
  j["root"] = {{"kind", "prio"}, {"handle", handle_text(kBladeRoot)}, {"bands", kPrioBands}};
  j["fault_qdisc"] = {{"kind", shaping.kind},
                      {"handle", handle_text(kBladeLeaf)},
                      {"parent", handle_text(kFaultBand)}};
  j["spared_band"] = handle_text(kSpareBand);
  nlohmann::json texts = nlohmann::json::array();
  for (const U32Filter &f : filters)
    texts.push_back(f.text);
  j["filters"] = texts;
  return j;
}

void install_tree(NetlinkRoute &nl, const TreePlan &plan, const PriorRoot &prior) {
  const int ifindex = plan.iface.ifindex;
  // A Blade root nobody owns (forced over): the kernel replaces a root
  // only by another handle or the same kind, so it goes first; the prior
  // recorded for it is the default, which this brings back meanwhile.
  // Read again here, so only a root still Blade's is deleted.
  if (plan.over_blade_root) {
    if (const auto root = nl.root(ifindex); root && root->handle == kBladeRoot) {
      const int err = nl.delete_root(ifindex);
      if (err < 0)
        throw sdk::FailedPrecondition("cannot delete the Blade root qdisc " + root->kind +
                                      " b1ad: no experiment owns: " + netlink_error(err));
    }
  }
  NetlinkBatch batch(nl);
  auto queue = [&](int built, NlMsgPtr msg, const std::string &kind, const std::string &step) {
    // Nothing was sent yet: a request that cannot even be built changes nothing.
    if (built < 0) refused(built, kind, step);
    batch.add(std::move(msg));
  };
  const std::string shaper_step =
      "the " + plan.shaping.kind + (plan.filtered ? " qdisc" : " root qdisc");
  if (!plan.filtered) {
    // One replace: the kernel swaps the root or leaves the old one.
    NlMsgPtr msg;
    const int built = shaper_request(ifindex, kBladeRoot, TC_H_ROOT, plan.shaping,
                                     NLM_F_CREATE | NLM_F_REPLACE, msg);
    queue(built, std::move(msg), plan.shaping.kind, shaper_step);
    const int err = batch.run().front();
    if (err < 0) refused(err, plan.shaping.kind, shaper_step);
    BLADE_FAILPOINT("network.netem.create.after_root");
    return;
  }
  // The root, the fault's qdisc and every filter in one batch: the kernel
  // takes them in this order, so each finds its parent made just before.
  {
    NlMsgPtr msg;
    const int built = prio_request(ifindex, msg);
    queue(built, std::move(msg), "prio", "the prio root qdisc");
  }
  {
    NlMsgPtr msg;
    const int built = shaper_request(ifindex, kBladeLeaf, kFaultBand, plan.shaping,
                                     NLM_F_CREATE | NLM_F_EXCL, msg);
    queue(built, std::move(msg), plan.shaping.kind, shaper_step);
  }
  for (const U32Filter &f : plan.filters) {
    NlMsgPtr msg;
    const int built = u32_filter_request(ifindex, kBladeRoot, f, msg);
    queue(built, std::move(msg), "u32", "the u32 filter " + f.text);
  }
  const std::vector<int> answers = batch.run();
  // A refusal once anything of the tree may be on puts the prior root
  // back before it is reported (replacing or deleting Blade's root takes
  // the fault's qdisc and the filters with it).
  auto undo_and_refuse = [&](int why, const std::string &kind, const std::string &step) {
    const int back = put_back(nl, ifindex, prior);
    if (back < 0)
      throw sdk::FailedPrecondition("the kernel refused " + step + " (" + netlink_error(why) +
                                    "), and putting the prior root qdisc back failed too: " +
                                    netlink_error(back) + "; destroy retries it");
    refused(why, kind, step);
  };
  // The answers are read in the order sent, and the first refusal is the
  // one reported: a later one may only follow from it (no parent).
  if (answers[0] < 0) {
    // Refused, or its answer lost with the rest of the batch's (a failed
    // receive): the root now says whether any of the tree went on.
    const auto root = nl.root(ifindex);
    if (root && root->handle == kBladeRoot)
      undo_and_refuse(answers[0], "prio", "the prio root qdisc");
    refused(answers[0], "prio", "the prio root qdisc");
  }
  // The failpoints mark each step as its answer is read: the kernel has
  // taken the whole batch by then, which a kill here leaves for recovery.
  BLADE_FAILPOINT("network.netem.create.after_root");
  if (answers[1] < 0) undo_and_refuse(answers[1], plan.shaping.kind, shaper_step);
  BLADE_FAILPOINT("network.netem.create.after_leaf");
  for (std::size_t i = 0; i < plan.filters.size(); ++i)
    if (answers[2 + i] < 0)
      undo_and_refuse(answers[2 + i], "u32", "the u32 filter " + plan.filters[i].text);
}

RestoreOutcome restore_prior(NetlinkRoute &nl, int ifindex, const std::string &blade_kind,
                             const PriorRoot &prior) {
  RestoreOutcome out;
  const auto root = nl.root(ifindex);
  if (!root) {
    out.already_gone = true;
    out.note = "the interface (ifindex " + std::to_string(ifindex) + ") is gone: nothing to undo";
    return out;
  }
  out.root_now = root->kind + " " + handle_text(root->handle);
  if (root->handle == 0) {
    out.already_gone = true;
    out.note = "Blade's root qdisc was removed already (the root is the kernel's default " +
               root->kind + " now): nothing to undo";
    return out;
  }
  if (root->handle != kBladeRoot || root->kind != blade_kind) {
    out.note = "the root qdisc is now " + root->kind + " " + handle_text(root->handle) +
               ", not Blade's " + blade_kind + " " + handle_text(kBladeRoot) +
               ": left alone (removed or replaced by someone else)";
    return out;
  }
  const int err = put_back(nl, ifindex, prior);
  if (err < 0)
    throw sdk::FailedPrecondition("cannot put the prior root qdisc " + prior.kind + " " +
                                  handle_text(prior.handle) + " back: " + netlink_error(err));
  out.touched = true;
  out.note =
      prior.is_default()
          ? "Blade's root removed: the kernel's default " + prior.kind + " is back"
          : "the prior root " + prior.kind + " " + handle_text(prior.handle) + " is back as it was";
  return out;
}

}  // namespace blade::network
