// Choosing the one container a selector names, across the runtimes.
#include <algorithm>
#include <set>
#include <stdexcept>

#include "../../../common/durable_file.hpp"
#include "../resolver.hpp"
#include "containerd_resolver.hpp"
#include "crio_resolver.hpp"
#include "docker_resolver.hpp"
#include "runc_resolver.hpp"
#include "selector_checks.hpp"

namespace blade::cri {

Resolver::Listing Resolver::list_matching(const Selector &sel) const {
  Listing out;
  auto all = list();
  out.seen = all.size();
  for (auto &c : all)
    if (matches(c, sel)) out.matched.push_back(std::move(c));
  return out;
}

std::optional<Container> Resolver::get(const std::string &id) const {
  for (auto &c : list())
    if (c.id == id) return std::move(c);
  return std::nullopt;
}

bool matches(const Container &c, const Selector &sel) {
  if (!sel.id.empty() && !c.id.starts_with(sel.id)) return false;
  if (!sel.name.empty() && c.name != sel.name) {
    auto it = c.labels.find("io.kubernetes.container.name");
    if (it == c.labels.end() || it->second != sel.name) return false;
  }
  for (const auto &[k, v] : sel.labels) {
    auto it = c.labels.find(k);
    if (it == c.labels.end() || it->second != v) return false;
  }
  return true;
}

RuntimeRoots effective_roots(const Selector &sel, RuntimeRoots roots) {
  if (sel.runtime == "runc") {
    if (!sel.state_root.empty()) roots.runc_root = sel.state_root;
  } else if (sel.runtime == "containerd") {
    if (!sel.state_root.empty())
      roots.containerd_state = sel.state_root;
    else if (!sel.endpoint.empty())
      roots.containerd_state = plugins::directory_of(sel.endpoint);
  } else if (sel.runtime == "cri-o") {
    if (!sel.state_root.empty()) roots.crio_storage = sel.state_root;
  } else if (sel.runtime == "docker") {
    if (!sel.endpoint.empty()) roots.docker_socket = sel.endpoint;
  }
  return roots;
}

namespace {

std::unique_ptr<Resolver> make_one(std::string_view runtime, const std::string &ns,
                                   const RuntimeRoots &roots) {
  if (runtime == "runc") return std::make_unique<RuncResolver>(roots.runc_root);
  if (runtime == "containerd")
    return std::make_unique<ContainerdResolver>(roots.containerd_state, roots.containerd_runc_root,
                                                ns);
  if (runtime == "cri-o")
    return std::make_unique<CrioResolver>(roots.crio_storage, roots.crio_runc_root);
  if (runtime == "docker") return std::make_unique<DockerResolver>(roots.docker_socket);
  check_runtime(runtime);  // throws: no resolver for it
  throw std::logic_error("check_runtime passed a runtime make_one does not build");
}

// A container's line in a message: "runc 9b4e1c7a25f0... (web)".
std::string describe(const Container &c) {
  std::string out = c.runtime + " " + c.id;
  if (!c.ns.empty()) out += " in namespace " + c.ns;
  if (!c.name.empty()) out += " (" + c.name + ")";
  return out;
}

// What the selector asked for, in the flags' words.
std::string describe(const Selector &sel) {
  std::string out;
  auto add = [&](const std::string &part) { out += (out.empty() ? "" : ", ") + part; };
  if (!sel.id.empty()) add("container-id " + sel.id);
  if (!sel.name.empty()) add("container-name " + sel.name);
  if (!sel.labels.empty()) {
    std::string terms;
    for (const auto &[k, v] : sel.labels)
      terms += (terms.empty() ? "" : ",") + k + "=" + v;
    add("container-label-selector " + terms);
  }
  return out;
}

}  // namespace

std::vector<std::unique_ptr<Resolver>> make_resolvers(const Selector &sel,
                                                      const RuntimeRoots &roots) {
  std::vector<std::unique_ptr<Resolver>> out;
  if (!sel.runtime.empty()) {
    out.push_back(make_one(sel.runtime, sel.ns, roots));
    return out;
  }
  // The runtimes that know pods first: a CRI-O container is also in runc's
  // root (CRI-O runs runc with the default root), and the first listing of
  // one process is the one kept.
  for (std::string_view r : {"containerd", "cri-o", "docker", "runc"})
    out.push_back(make_one(r, sel.ns, roots));
  return out;
}

Container find_container(const Selector &sel, const RuntimeRoots &roots) {
  if (sel.id.empty() && sel.name.empty() && sel.labels.empty())
    throw sdk::InvalidArgument(
        "name the container with container-id, container-name or container-label-selector");
  auto resolvers = make_resolvers(sel, effective_roots(sel, roots));
  std::vector<Container> found;
  std::set<std::pair<int, std::uint64_t>> inits;  // one process listed twice is one container
  std::string tried;
  for (const auto &r : resolvers) {
    std::string note;
    try {
      auto listing = r->list_matching(sel);
      note = std::to_string(listing.seen) + " running container" + (listing.seen == 1 ? "" : "s") +
             " in " + r->where() + ", " + std::to_string(listing.matched.size()) + " matched";
      for (auto &c : listing.matched)
        if (inits.emplace(c.init_pid, c.init_start).second) found.push_back(std::move(c));
    } catch (const Unavailable &e) {
      note = e.what();
    } catch (const sdk::Error &) {
      throw;
    } catch (const std::exception &e) {
      note = std::string("failed: ") + e.what();
    }
    tried += (tried.empty() ? "" : "; ") + std::string(r->runtime()) + ": " + note;
  }
  // An exact id is the one meant, even when longer ids start with it.
  if (!sel.id.empty() && found.size() > 1) {
    auto exact = std::find_if(found.begin(), found.end(),
                              [&](const Container &c) { return c.id == sel.id; });
    if (exact != found.end()) return std::move(*exact);
  }
  if (found.size() == 1) return std::move(found.front());
  if (found.empty())
    throw sdk::NotFound("no running container matches " + describe(sel) + " (" + tried + ")");
  std::string names;
  for (const auto &c : found)
    names += (names.empty() ? "" : "; ") + describe(c);
  throw sdk::InvalidArgument(describe(sel) + " matches " + std::to_string(found.size()) +
                             " containers: " + names +
                             "; narrow the selection (more of the id, a name or labels)");
}

std::optional<Container> find_by_id(std::string_view runtime, const std::string &id,
                                    const std::string &ns, const RuntimeRoots &roots) {
  check_container_id(id);
  if (runtime == "containerd") check_namespace(ns);
  return make_one(runtime, ns, roots)->get(id);
}

}  // namespace blade::cri
