// Finding a container: one small interface, one implementation per runtime,
// each reading only that runtime's own state (files, or docker's API over
// its UNIX socket), never a CLI's output.
#pragma once

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

// What the user asked for, from the container flags.
struct Selector {
  std::string id;    // container-id: full or unique prefix
  std::string name;  // container-name
  std::vector<std::pair<std::string, std::string>> labels;  // container-label-selector
  std::string runtime;  // container-runtime; empty: every runtime that answers
  std::string ns = "k8s.io";  // container-namespace (containerd)
};

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
};

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
