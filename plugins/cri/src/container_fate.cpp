#include "container_fate.hpp"

#include <thread>

namespace blade::cri {

ContainerFate container_fate(const Container &was, const std::string &ns_fallback,
                             const RuntimeRoots &roots) {
  ContainerFate fate;
  try {
    fate.now = find_by_id(was.runtime, was.id, was.ns.empty() ? ns_fallback : was.ns, roots);
  } catch (const Unavailable &e) {
    fate.why_gone = std::string("its runtime does not answer: ") + e.what();
    return fate;
  }
  if (!fate.now) {
    fate.why_gone = "its runtime no longer lists it";
    return fate;
  }
  const bool same = fate.now->init_pid == was.init_pid && fate.now->init_start == was.init_start;
  fate.kind = same ? ContainerFate::Kind::same : ContainerFate::Kind::restarted;
  return fate;
}

ContainerFate settled_container_fate(const Container &was, const std::string &ns_fallback,
                                     const RuntimeRoots &roots, std::chrono::milliseconds settle) {
  const auto until = std::chrono::steady_clock::now() + settle;
  for (;;) {
    ContainerFate fate = container_fate(was, ns_fallback, roots);
    if (fate.kind != ContainerFate::Kind::same || std::chrono::steady_clock::now() >= until)
      return fate;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace blade::cri
