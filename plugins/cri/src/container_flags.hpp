// The flags that name the container (spec-yaml/container-flags.yaml, the one
// list): what the plugin reads to find the container and removes before the
// fault itself sees the request.
#pragma once

#include <span>
#include <string_view>

namespace blade::cri {

// Generated at build time by tools/cri_spec.py.
std::span<const std::string_view> container_flags();

inline bool is_container_flag(std::string_view name) {
  for (std::string_view f : container_flags())
    if (f == name) return true;
  return false;
}

}  // namespace blade::cri
