// What became of the container a fault was aimed at: still the same (same
// init pid and start time), restarted (same id, a new init), or deleted
// (its runtime no longer lists it, or does not answer). Asked by destroy
// and when a helper that held a fault died.
#pragma once

#include <optional>
#include <string>

#include "container.hpp"
#include "resolver.hpp"

namespace blade::cri {

struct ContainerFate {
  enum class Kind { same, restarted, deleted } kind = Kind::deleted;
  std::optional<Container> now;  // same or restarted: the container as it is
  std::string why_gone;          // deleted: what the runtime said
};

// `ns_fallback` stands in for a record without a namespace (every runtime
// but containerd): find_by_id checks it only for containerd.
ContainerFate container_fate(const Container &was, const std::string &ns_fallback,
                             const RuntimeRoots &roots);

}  // namespace blade::cri
