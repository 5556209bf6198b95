// How each fault enters its container: which namespaces the helper joins,
// whether it joins the container's cgroup, and what the fault's own Host
// config says (cpu and mem measured against the container's quota/limit).
// The plugin decides; the helper obeys.
#pragma once

#include <string>
#include <string_view>

#include "container.hpp"
#include "helper_protocol.hpp"

namespace blade::cri {

struct InnerSetup {
  EnterPlan enter;
  // The inner Host's config_json: {"cpu_meter":"cgroup","mem_meter":"cgroup"}
  // for cpu and mem, so cpu-percent and mem-percent are of the container's
  // cpu quota and memory limit; "{}" elsewhere.
  std::string config_json = "{}";
};

// The setup of (target, action) against container `c` (its init pid and
// start time go in the plan, so the helper refuses a reused pid).
// NotSupported for a target the cri plugin does not offer.
InnerSetup inner_setup(std::string_view target, std::string_view action, const Container &c);

// NotSupported unless (target, action) is offered inside a container: what
// create and dry_run check before looking for the container.
void check_offered(std::string_view target, std::string_view action);

// Whether a fault leaves something that outlives the container's init, i.e.
// in its rootfs (file and script faults, disk fill, dns's /etc/hosts): after a restart the new
// container still has it, so destroy undoes it there.
bool outlives_init(std::string_view target, std::string_view action);

// Whether the fault lives in the helper process (cpu and io burners, held
// memory, a tracer, a held socket): when the helper dies, so does it. The
// other faults' changes (nft tables, qdiscs, stopped or started processes,
// files) stay in the container without it.
bool lives_in_helper(std::string_view target, std::string_view action);

// What went with the old init, for destroy's report after a restart or
// deletion (e.g. "the cpu burners (in the old container's cgroup)").
std::string vanished_with_init(std::string_view target, std::string_view action);

}  // namespace blade::cri
