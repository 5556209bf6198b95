// Finding a container: one small interface, one implementation per runtime,
// each reading only that runtime's own state (files, or docker's API over
// its UNIX socket), never a CLI's output.
//
// Selection: every selector flag given must match (container-id AND
// container-name AND each term of container-label-selector); none has
// priority over another. container-id is a full id or a prefix of one; when
// one container's id equals it exactly, a longer id that merely starts with
// it does not make the choice ambiguous. container-name matches the
// container's name or its kubelet label io.kubernetes.container.name (so a
// docker container named k8s_web_... is found as "web" too).
//
// Which labels each runtime shows (what container-label-selector sees):
//  - runc/crun: the OCI annotations of the container (runc keeps them in its
//    state as config.labels "k=v"), plus those of the bundle's config.json
//    when it is readable.
//  - containerd: the OCI annotations of the task's config.json. Labels given
//    to containerd itself (`ctr run --label`, and the kubelet labels the CRI
//    plugin stores as container labels) live only in containerd's metadata
//    database (bolt), not in any file a resolver reads; the CRI plugin does
//    write io.kubernetes.cri.container-name / sandbox-name /
//    sandbox-namespace as annotations, and from those the resolver derives
//    the kubelet labels io.kubernetes.container.name / io.kubernetes.pod.name
//    / io.kubernetes.pod.namespace. A container started by hand with
//    `ctr run` is selectable by what it was given with --annotation (ctr
//    1.6 also copies its --label values into the annotations, but a label
//    set only through containerd's API is invisible here).
//  - CRI-O: the container's labels (annotation io.kubernetes.cri-o.Labels,
//    a JSON object, which holds the kubelet labels) over its annotations.
//  - docker: Config.Labels (under cri-dockerd these are the kubelet labels).
// Pod sandboxes (pause containers: io.kubernetes.cri.container-type or
// io.kubernetes.cri-o.ContainerType "sandbox", io.kubernetes.docker.type
// "podsandbox") are never listed: a fault is aimed at a workload container,
// and a pod's name would otherwise always match two containers.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <blade/plugin.hpp>

#include "container.hpp"

namespace blade::cri {

// Where each runtime keeps its state. Defaults are the runtimes' own; each
// is overridable (flags cri-endpoint / container-state-root, plugin config).
struct RuntimeRoots {
  std::string runc_root = "/run/runc";
  // containerd: <state>/io.containerd.runtime.v2.task/<ns>/<id>/ (init.pid,
  // config.json) and the shim's runc state under <runc_root>/<ns>/<id>/.
  std::string containerd_state = "/run/containerd";
  std::string containerd_runc_root = "/run/containerd/runc";
  // CRI-O: its containers' userdata (config.json, pidfile, state) and the
  // runc state it keeps.
  std::string crio_storage = "/run/containers/storage";
  std::string crio_runc_root = "/run/runc";
  std::string docker_socket = "/var/run/docker.sock";
};

// crun keeps runc's state format under its own root.
inline constexpr const char *kCrunRoot = "/run/crun";

// What the user asked for, from the container flags.
struct Selector {
  std::string id;    // container-id: full or unique prefix
  std::string name;  // container-name
  std::vector<std::pair<std::string, std::string>> labels;  // container-label-selector
  std::string runtime;  // container-runtime; empty: every runtime that answers
  std::string ns = "k8s.io";  // container-namespace (containerd)
  // Root overrides (see effective_roots); parse_selector allows them only
  // with container-runtime, which names whose root they are.
  std::string endpoint;    // cri-endpoint, without a unix:// prefix
  std::string state_root;  // container-state-root (crun: /run/crun unless given)
};

// `roots` with the selector's overrides applied, for sel.runtime:
//  - runc (and crun): container-state-root is the runc root. runc has no
//    endpoint.
//  - containerd: container-state-root is containerd's state dir (--state);
//    cri-endpoint, its socket (unix:///run/containerd/containerd.sock),
//    names the state dir as the socket's directory, where containerd keeps
//    both by default. container-state-root wins when both are given.
//  - cri-o: container-state-root is its storage run root (--runroot).
//  - docker: cri-endpoint is the socket path.
// find_container applies them itself; the plugin keeps the result for the
// destroy's find_by_id.
RuntimeRoots effective_roots(const Selector &sel, RuntimeRoots roots);

// A runtime that does not answer here (no state dir, no socket): not an
// error while others are tried; its message says what was looked at.
struct Unavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Resolver {
 public:
  virtual ~Resolver() = default;
  virtual std::string_view runtime() const = 0;  // "runc", "containerd", ...
  virtual std::string where() const = 0;         // e.g. "runc state in /run/runc"
  // Every container of this runtime whose init is alive (namespace-scoped
  // for containerd). Throws Unavailable when the runtime does not answer.
  virtual std::vector<Container> list() const = 0;

  // The containers `sel` matches (see matches()) and how many were looked
  // at. By default list() filtered; docker asks its API to filter by label
  // and inspects only the candidates.
  struct Listing {
    std::vector<Container> matched;
    std::size_t seen = 0;
  };
  virtual Listing list_matching(const Selector &sel) const;

  // The alive container whose id is exactly `id`; nullopt when there is
  // none. By default a scan of list().
  virtual std::optional<Container> get(const std::string &id) const;
};

// Whether `c` satisfies every selector `sel` gives (id prefix, name, labels);
// sel.runtime and sel.ns are the resolvers' business, not checked here.
bool matches(const Container &c, const Selector &sel);

// The resolvers `sel` asks for (all four when sel.runtime is empty).
// InvalidArgument naming container-runtime for an unknown runtime.
std::vector<std::unique_ptr<Resolver>> make_resolvers(const Selector &sel,
                                                      const RuntimeRoots &roots);

// The one container `sel` names. sdk::NotFound (404) when none matches,
// sdk::InvalidArgument (400) when several do or no selector flag was given;
// the message names the runtimes tried (and why one did not answer) and
// the ids that matched.
Container find_container(const Selector &sel, const RuntimeRoots &roots);

// Destroy's lookup: the container `runtime` knows as exactly `id` (in `ns`
// for containerd), alive; nullopt when it is gone (deleted). Throws
// Unavailable when the runtime does not answer at all.
std::optional<Container> find_by_id(std::string_view runtime, const std::string &id,
                                    const std::string &ns, const RuntimeRoots &roots);

// The selector from a request's container flags; InvalidArgument naming the
// flag (e.g. a label selector term without '=').
Selector parse_selector(const sdk::Request &req);

}  // namespace blade::cri
