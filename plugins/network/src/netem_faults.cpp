// network delay, loss, duplicate, corrupt, reorder, rate: qdiscs on an
// interface's egress over rtnetlink (qdisc_tree.hpp has the shape).
//
// create: resolve and check everything (flags, the interface, who owns it,
// the root qdisc there now) before any change; save the restore record
// (with the prior root) ahead; claim the interface; install. A refused
// step undoes what was done, so a failed create leaves the interface as it
// was. destroy: from the record alone, put the prior root back if the root
// is still Blade's; idempotent, and what the recovery of a restarted
// daemon runs.
#include <linux/pkt_sched.h>

#include <algorithm>
#include <memory>
#include <string>

#include <blade/failpoint.hpp>

#include "control_path.hpp"
#include "fault_families.hpp"
#include "interface_ref.hpp"
#include "netem_options.hpp"
#include "netem_state.hpp"
#include "netlink_route.hpp"
#include "qdisc_tree.hpp"
#include "u32_filters.hpp"

namespace blade::network {
namespace {

using nlohmann::json;

constexpr int kRecordVersion = 1;

// The kinds of classful roots whose classes are made by hand (tc class
// add): replacing such a root would lose them, as would child qdiscs and
// filters, which destroy could not put back.
bool user_classes(const std::string &kind) {
  return kind == "htb" || kind == "hfsc" || kind == "cbq" || kind == "drr" || kind == "qfq";
}

struct Prepared {
  // The rtnetlink socket prepare read the root with; create installs over
  // the same one.
  std::unique_ptr<NetlinkRoute> nl;
  TreePlan plan;
  ControlPath control;
  PriorRoot prior;
  std::string prior_note;  // how the prior root was judged
};

class NetemFault : public sdk::Fault {
 public:
  explicit NetemFault(sdk::Host host) : host_(host) {}

  sdk::Outcome create(const sdk::Request &req, sdk::Call &call) override {
    NetemState state(host_);
    Prepared p = prepare(req, state);
    const std::string uid(req.uid());
    json record = {{"version", kRecordVersion},           {"interface", p.plan.iface.name},
                   {"ifindex", p.plan.iface.ifindex},     {"netns", p.plan.iface.netns},
                   {"resource", p.plan.iface.resource()}, {"root_kind", p.plan.root_kind()},
                   {"prior", p.prior.to_json()}};
    state.checkpoint(call, uid, record);
    BLADE_FAILPOINT("network.netem.create.after_record");
    try {
      state.claim(p.plan.iface, uid);
      install_tree(*p.nl, p.plan, p.prior);
      BLADE_FAILPOINT("network.netem.create.after_install");
    } catch (...) {
      // Nothing of the fault is on the interface (install_tree undid its
      // steps): the claim and record go too.
      try {
        state.finish(uid);
      } catch (const std::exception &e) {
        host_.warn("experiment " + uid + ": cleaning up a failed create: " + e.what());
      }
      throw;
    }
    sdk::Outcome out;
    out.result_json = result(p).dump();
    out.restore_json = record.dump();
    return out;
  }

  // Says what it found in the destroy's report: {"restored": true} when
  // Blade's root came off, else "already_gone" (nothing of the fault was
  // left) or "left_alone" (someone else's root is there now, kept), each
  // with the reason, and the interface it looked at.
  void destroy(const sdk::Request &req, sdk::Call &call) override {
    NetemState state(host_);
    const std::string uid(req.uid());
    const json rec = state.record(req);
    const int ifindex = rec.value("ifindex", 0);
    json report = {{"restored", false}};
    if (ifindex <= 0) {  // create stopped before its first step
      report["already_gone"] = "create stopped before it changed the interface: nothing to undo";
      call.report(report.dump());
      state.finish(uid);
      return;
    }
    report["interface"] = rec.value("interface", "");
    report["ifindex"] = ifindex;
    const std::uint64_t netns = rec.value("netns", std::uint64_t{0});
    if (netns != current_netns())
      throw sdk::FailedPrecondition("the fault is on an interface of network namespace " +
                                    std::to_string(netns) + " and the daemon is in " +
                                    std::to_string(current_netns()) + " now; nothing was undone");
    const std::string resource = rec.value("resource", "");
    if (auto other = state.other_owner(resource, uid)) {
      // The interface is another experiment's now: this one's tree is gone.
      const std::string why =
          resource + " is experiment " + *other + "'s now; its qdiscs are left alone";
      host_.warn("experiment " + uid + ": " + why);
      report["left_alone"] = why;
      call.report(report.dump());
      state.finish(uid);
      return;
    }
    BLADE_FAILPOINT("network.netem.destroy.before_restore");
    NetlinkRoute nl;
    const RestoreOutcome done = restore_prior(nl, ifindex, rec.value("root_kind", ""),
                                              PriorRoot::from_json(rec.value("prior", json())));
    if (done.touched)
      host_.info("experiment " + uid + ": " + done.note);
    else
      host_.warn("experiment " + uid + ": " + done.note);
    report["restored"] = done.touched;
    if (done.touched)
      report["note"] = done.note;
    else
      report[done.already_gone ? "already_gone" : "left_alone"] = done.note;
    if (!done.touched && !done.root_now.empty()) report["root_now"] = done.root_now;
    call.report(report.dump());
    BLADE_FAILPOINT("network.netem.destroy.after_restore");
    state.finish(uid);
  }

  std::string dry_run(const sdk::Request &req, sdk::Call &) override {
    NetemState state(host_);
    Prepared p = prepare(req, state);
    json plan = result(p);
    plan["modules_needed"] = p.plan.modules();
    plan["changed"] = false;
    return plan.dump();
  }

 private:
  // Everything create decides, without changing anything; the refusals
  // (400, 409, 422) come from here.
  Prepared prepare(const sdk::Request &req, const NetemState &state) const {
    Prepared p;
    p.plan.iface = resolve_interface(req.flag_or("interface", ""));
    p.plan.shaping = shaping_for(req);
    const Selection sel = selection_of(req);
    p.control = control_path_for(req, host_.daemon_pid());
    p.plan.filtered = sel.selects() || sel.excludes() || !p.control.empty();
    if (p.plan.filtered) p.plan.filters = plan_filters(sel, p.control, kFaultBand, kSpareBand);
    if (p.plan.shaping.kind == "tbf") {
      // The bucket holds 10 ms at the rate, and at least two full frames:
      // a packet larger than the bucket could never be sent.
      const auto frame = static_cast<std::uint64_t>(interface_mtu(p.plan.iface.name)) + 64;
      p.plan.shaping.tbf.burst =
          static_cast<std::uint32_t>(std::max(p.plan.shaping.tbf.rate_bytes / 100, 2 * frame));
    }
    state.refuse_if_held(p.plan.iface, req.uid());

    p.nl = std::make_unique<NetlinkRoute>();
    NetlinkRoute &nl = *p.nl;
    const auto root = nl.root(p.plan.iface.ifindex);
    if (!root)
      throw sdk::InvalidArgument("interface: " + p.plan.iface.name +
                                 " has no root qdisc to "
                                 "replace (is it gone?)");
    const bool force = req.flag_bool("force");
    const std::string here = "interface: " + p.plan.iface.name + " has ";
    if (root->handle == kBladeRoot) {
      // Blade's mark with no live owner (a create or destroy cut short
      // without its record): nothing to put back but the default.
      if (!force)
        throw sdk::AlreadyExists(here + "a Blade root qdisc (" + root->kind + " " +
                                 handle_text(root->handle) +
                                 ") that no active experiment owns; force replaces it, and "
                                 "destroy then removes it");
      p.prior.kind = "default";
      p.plan.over_blade_root = true;
      p.prior_note = "a Blade leftover replaced (force); destroy gives the kernel's default back";
    } else if (root->handle != 0) {
      const std::string what = root->kind + " " + handle_text(root->handle);
      if (!force)
        throw sdk::AlreadyExists(here + "a root qdisc Blade did not create (" + what +
                                 "); force replaces it, and destroy puts it back as it was");
      refuse_unrestorable(nl, p.plan.iface, *root);
      p.prior = PriorRoot::of(*root);
      p.prior_note = "replaced (force); destroy puts it back from its options as dumped";
    } else {
      p.prior = PriorRoot::of(*root);
      p.prior_note = "the kernel's default; destroy deletes Blade's root, which brings it back";
    }
    return p;
  }

  // A forced replace only of what destroy can put back whole: the root
  // qdisc alone, without a size table, child qdiscs, filters or hand-made
  // classes.
  static void refuse_unrestorable(NetlinkRoute &nl, const InterfaceRef &iface,
                                  const QdiscDump &root) {
    const std::string what = "interface: force cannot replace the root qdisc " + root.kind + " " +
                             handle_text(root.handle) + " of " + iface.name + ": it has ";
    const std::string why = ", which destroy could not put back; remove them first";
    if (root.has_stab) throw sdk::FailedPrecondition(what + "a size table (stab)" + why);
    std::size_t children = 0;
    for (const QdiscDump &q : nl.qdiscs(iface.ifindex))
      if (q.parent != TC_H_ROOT && TC_H_MAJ(q.parent) == TC_H_MAJ(root.handle)) ++children;
    if (children)
      throw sdk::FailedPrecondition(what + std::to_string(children) + " child qdisc(s)" + why);
    if (const std::size_t n = nl.filter_count(iface.ifindex, root.handle))
      throw sdk::FailedPrecondition(what + std::to_string(n) + " filter(s)" + why);
    if (user_classes(root.kind))
      if (const std::size_t n = nl.class_count(iface.ifindex))
        throw sdk::FailedPrecondition(what + std::to_string(n) + " class(es)" + why);
  }

  static json result(const Prepared &p) {
    json prior = p.prior.to_json();
    prior["note"] = p.prior_note;
    return {{"interface", p.plan.iface.name},
            {"ifindex", p.plan.iface.ifindex},
            {"netns", p.plan.iface.netns},
            {"structure", p.plan.describe()},
            {p.plan.shaping.kind, p.plan.shaping.describe()},
            {"excluded", p.control.excluded},
            {"prior_root", prior}};
  }

  sdk::Host host_;
};

}  // namespace

void add_netem_faults(sdk::FaultRouter &router, sdk::Host host) {
  for (const char *action : {"delay", "loss", "duplicate", "corrupt", "reorder", "rate"})
    router.add("network", action, std::make_unique<NetemFault>(host));
}

}  // namespace blade::network
