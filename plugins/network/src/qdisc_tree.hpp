// The qdiscs a netem-family fault puts on an interface's egress, and how
// they come off again.
//
// Unfiltered (only `interface`, nothing to spare): netem (or tbf for rate)
// is the root qdisc, handle b1ad:. Filtered: the root is prio b1ad: with 4
// bands; its priomap sends ordinary traffic to bands 1-3 as a plain prio
// would, band 4 (b1ad:4) holds the netem or tbf, handle b1ae:, and only
// u32 filters send packets there; exclusions are sent to band 1 (b1ad:1)
// by filters of a higher priority. b1ad: marks a root as Blade's.
//
// The root that was there before is kept (kind, handle, parent and its
// TCA_OPTIONS bytes as dumped): restoring adds it back from those bytes,
// or deletes the root when it was the kernel's default (handle 0: noqueue,
// pfifo_fast, mq, fq_codel ...), which gives the default back.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "interface_ref.hpp"
#include "netem_options.hpp"
#include "netlink_route.hpp"
#include "u32_filters.hpp"

namespace blade::network {

constexpr std::uint32_t kBladeRoot = 0xb1ad0000;      // b1ad:
constexpr std::uint32_t kBladeLeaf = 0xb1ae0000;      // b1ae:, under band 4
constexpr std::uint32_t kSpareBand = kBladeRoot | 1;  // b1ad:1
constexpr std::uint32_t kFaultBand = kBladeRoot | 4;  // b1ad:4
constexpr int kPrioBands = 4;

// The root qdisc found before the fault, as the restore record keeps it.
struct PriorRoot {
  std::string kind;
  std::uint32_t handle = 0;
  std::uint32_t parent = 0;
  bool has_options = false;
  std::vector<std::uint8_t> options;

  // The kernel's own default (or a Blade leftover nobody owns): restoring
  // is deleting the root.
  bool is_default() const { return handle == 0; }

  static PriorRoot of(const QdiscDump &q);
  nlohmann::json to_json() const;
  // InvalidArgument-free: a malformed record gives a default prior, so
  // destroy still removes Blade's root.
  static PriorRoot from_json(const nlohmann::json &j);
};

struct TreePlan {
  InterfaceRef iface;
  Shaping shaping;
  bool filtered = false;
  std::vector<U32Filter> filters;
  // The root now is a Blade root nobody owns (forced over): install
  // deletes it first.
  bool over_blade_root = false;

  std::string root_kind() const { return filtered ? "prio" : shaping.kind; }
  // The kernel modules the tree needs (sch_netem, sch_prio, cls_u32 ...).
  std::vector<std::string> modules() const;
  // The structure as the result shows it: root, bands, the fault's qdisc,
  // the filters as text.
  nlohmann::json describe() const;
};

// Installs the tree over `prior` (which must be the root now), its
// requests sent together (NetlinkBatch), the order and the kernel's answer
// to each kept. A step the kernel refuses undoes the tree (the prior root
// is put back) and throws: FailedPrecondition "sch_netem is not available: modprobe
// sch_netem ..." when the kernel knows no such qdisc or classifier, else
// FailedPrecondition with the kernel's error.
void install_tree(NetlinkRoute &nl, const TreePlan &plan, const PriorRoot &prior);

// What restore_prior found and did, for the log and the destroy's report.
struct RestoreOutcome {
  bool touched = false;  // Blade's root was there and is replaced
  // Not touched: the fault's root was gone already (the interface, or the
  // root deleted back to the kernel's default), as opposed to replaced by
  // a root someone else put there, which is left alone.
  bool already_gone = false;
  std::string root_now;  // "<kind> <handle>" of the root found, "" when none
  std::string note;
};

// Puts `prior` back on `ifindex` if its root is still Blade's root of kind
// `blade_kind`; leaves any other root (someone replaced Blade's meanwhile,
// or it is already gone) and says so. Throws FailedPrecondition when the
// kernel refuses.
RestoreOutcome restore_prior(NetlinkRoute &nl, int ifindex, const std::string &blade_kind,
                             const PriorRoot &prior);

}  // namespace blade::network
