#include "containerd_resolver.hpp"

#include "oci_labels.hpp"
#include "runc_resolver.hpp"
#include "state_files.hpp"

namespace blade::cri {

namespace {

constexpr const char *kTaskDir = "/io.containerd.runtime.v2.task";
constexpr const char *kAbsent = "containerd not running?";

}  // namespace

std::string ContainerdResolver::tasks_dir() const {
  return state_ + kTaskDir;
}

std::string ContainerdResolver::where() const {
  return tasks_dir() + "/" + ns_;
}

std::optional<Container> ContainerdResolver::load(const std::string &id) const {
  const std::string bundle = where() + "/" + id;
  auto pid = state::read_pid_file(bundle + "/init.pid");
  if (!pid) return std::nullopt;
  auto runc = read_runc_state(runc_root_ + "/" + ns_ + "/" + id + "/state.json");
  // runc's state names the same init when it exists; a different pid there
  // means one of the two files is stale: not a running container.
  if (runc && runc->init_pid != *pid) return std::nullopt;
  auto start = state::live_start(*pid, runc ? runc->init_start : std::nullopt);
  if (!start) return std::nullopt;
  Container c;
  c.runtime = "containerd";
  c.id = id;
  c.ns = ns_;
  c.labels = oci::bundle_annotations(bundle);
  oci::add_kubelet_labels_from_cri(c.labels);
  if (oci::is_pod_sandbox(c.labels)) return std::nullopt;
  c.name = oci::kubelet_container_name(c.labels);
  c.init_pid = *pid;
  c.init_start = *start;
  c.bundle = bundle;
  return c;
}

std::vector<Container> ContainerdResolver::list() const {
  state::subdirs_or_unavailable(tasks_dir(), kAbsent);
  // A namespace without a task yet has no directory: no containers in it.
  auto ids = state::subdirs(where());
  std::vector<Container> out;
  if (!ids) return out;
  for (const auto &id : *ids)
    if (auto c = load(id)) out.push_back(std::move(*c));
  return out;
}

std::optional<Container> ContainerdResolver::get(const std::string &id) const {
  state::subdirs_or_unavailable(tasks_dir(), kAbsent);
  return load(id);
}

}  // namespace blade::cri
