// What became of the container a fault was aimed at: still the same (same
// init pid and start time), restarted (same id, a new init), or deleted
// (its runtime no longer lists it, or does not answer). Asked by destroy
// and when a helper that held a fault died.
#pragma once

#include <chrono>
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

// How long a helper's death waits for the container's init to be seen gone.
// A container's end kills everything in its pid namespace, the helper's
// worker among them, while the init is still on its way out: for that
// moment /proc and the runtime's state still show it alive with the same
// start time.
inline constexpr std::chrono::milliseconds kInitExitSettle{1000};

// container_fate, asked again every 20 ms while it says "same", for up to
// `settle`: what a helper's death is judged by.
ContainerFate settled_container_fate(const Container &was, const std::string &ns_fallback,
                                     const RuntimeRoots &roots, std::chrono::milliseconds settle);

}  // namespace blade::cri
