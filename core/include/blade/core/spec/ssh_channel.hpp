// ChaosBlade's SSH channel flags (`--channel ssh --ssh-host ...`), with which
// its CLI ran the fault on another host. bladed acts only on its own host, so
// they are recognised and refused by name rather than passed to a plugin
// (which would refuse them as unknown) or, worse, ignored.
#pragma once

#include <span>
#include <string_view>

#include "blade/core/spec/flag_validation.hpp"
#include "blade/core/spec/spec.hpp"

namespace blade {

struct SshChannelFlag {
  std::string_view name;
  bool no_args;  // a switch in ChaosBlade's spec
};

// Every flag ChaosBlade's SSH executor reads (chaosblade-exec-os exec/ssh.go).
std::span<const SshChannelFlag> ssh_channel_flags();
bool is_ssh_channel_flag(std::string_view name);

// Throws Error(InvalidArgument) on field `flags.<name>` for the first SSH
// flag in `flags` that `action`'s spec does not itself declare: "remote
// execution over SSH is not supported; run bladed on that host". A
// `channel` asking for anything but ssh is ChaosBlade's local execution,
// which is what bladed does: it is removed from `flags` and accepted.
void refuse_ssh_channel(const TargetSpec &target, const ActionSpec &action, FlagValues &flags);

}  // namespace blade
