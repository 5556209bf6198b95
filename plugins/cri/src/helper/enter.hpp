// Entering a container: what blade-cri-helper does before it runs a fault.
// Single-threaded by contract (setns into a mount namespace refuses a
// process that shares its filesystem attributes with threads).
#pragma once

#include <string>

#include "../helper_protocol.hpp"
#include "channel.hpp"

namespace blade::cri {

// The fd the inner faults reach their state dir through (kInnerStateDir,
// helper_protocol.hpp).
inline constexpr int kStateFd = 4;

// In this order: opens the init's namespaces the plan names, checks its
// start time (after opening, so the handles are the container's and not a
// reused pid's: FAILED_PRECONDITION "container init <pid> is gone"), opens
// `state_dir` as fd 4 (O_PATH, kept across setns so records land on the
// host), joins the init's cgroups when asked (every v1 hierarchy and the
// v2 one; the named "name=systemd" hierarchy, and v2 beside v1 controllers,
// best effort, said in a log), then setns()es: ipc, uts, net, pid (which
// only children join), mnt last, then chdir("/"). Throws sdk::Error.
void enter_container(const EnterPlan &plan, const std::string &state_dir, Channel &channel);

// When the plan entered a pid namespace: forks a child born in it and
// returns in the child (which dies with the parent: PR_SET_PDEATHSIG). The
// parent drops its copy of the channel, waits, and exits with the child's
// status; it never returns. Without a pid namespace: returns at once.
void fork_into_pid_namespace(const EnterPlan &plan, int channel_fd);

}  // namespace blade::cri
