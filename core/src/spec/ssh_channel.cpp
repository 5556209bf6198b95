#include "blade/core/spec/ssh_channel.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include <fmt/format.h>

#include "blade/core/model/error.hpp"

namespace blade {
namespace {

constexpr std::array<SshChannelFlag, 11> kFlags{{
    {"channel", false},
    {"ssh-host", false},
    {"ssh-user", false},
    {"ssh-port", false},
    {"ssh-password", false},
    {"ssh-key", false},
    {"ssh-key-passphrase", true},
    {"blade-release", false},
    {"override-blade-release", true},
    {"install-path", false},
    {"blade-tgz-check-size", false},
}};

bool asks_for_ssh(const std::string &channel) {
  std::string lower = channel;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower == "ssh";
}

}  // namespace

std::span<const SshChannelFlag> ssh_channel_flags() {
  return kFlags;
}

bool is_ssh_channel_flag(std::string_view name) {
  return std::any_of(kFlags.begin(), kFlags.end(),
                     [&](const SshChannelFlag &f) { return f.name == name; });
}

void refuse_ssh_channel(const TargetSpec &target, const ActionSpec &action, FlagValues &flags) {
  const auto declared = effective_flags(target, action);
  auto in_spec = [&](const std::string &name) {
    return std::any_of(declared.begin(), declared.end(),
                       [&](const FlagSpec *f) { return f->name == name; });
  };
  for (auto it = flags.begin(); it != flags.end();) {
    const std::string &name = it->first;
    if (!is_ssh_channel_flag(name) || in_spec(name)) {
      ++it;
      continue;
    }
    if (name == "channel" && !asks_for_ssh(it->second)) {
      it = flags.erase(it);
      continue;
    }
    const std::string why = fmt::format(
        "remote execution over SSH is not supported; run bladed on that host (--{})", name);
    throw Error(ErrorCode::InvalidArgument, fmt::format("flags.{}: {}", name, why),
                {{"flags." + name, why}});
  }
}

}  // namespace blade
