// The container flags of a request, as a Selector.
#include "../resolver.hpp"
#include "selector_checks.hpp"

namespace blade::cri {

namespace {

std::string flag(const sdk::Request &req, std::string_view name) {
  return std::string(req.flag(name).value_or(""));
}

std::string trim(const std::string &s) {
  auto first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// "k=v,k2=v2": each term needs its '='; a value may be empty, a key not.
std::vector<std::pair<std::string, std::string>> parse_labels(const std::string &text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t at = 0;
  while (at <= text.size()) {
    auto comma = text.find(',', at);
    std::string term = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    auto eq = term.find('=');
    if (eq == std::string::npos || eq == 0)
      throw sdk::InvalidArgument("container-label-selector: '" + term +
                                 "' is not key=value (terms are separated by commas)");
    // "app=shop, tier=web": the blanks around a key or value are not part of it.
    std::string key = trim(term.substr(0, eq)), value = trim(term.substr(eq + 1));
    if (key.empty())
      throw sdk::InvalidArgument("container-label-selector: '" + term + "' has no key");
    out.emplace_back(std::move(key), std::move(value));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

}  // namespace

Selector parse_selector(const sdk::Request &req) {
  Selector sel;
  sel.id = flag(req, "container-id");
  if (!sel.id.empty()) check_container_id(sel.id);
  sel.name = flag(req, "container-name");
  // docker shows its names with a leading '/'; either spelling selects.
  if (sel.name.starts_with('/')) sel.name.erase(0, 1);
  if (auto labels = flag(req, "container-label-selector"); !labels.empty())
    sel.labels = parse_labels(labels);
  if (auto ns = flag(req, "container-namespace"); !ns.empty()) sel.ns = ns;
  check_namespace(sel.ns);

  std::string runtime = flag(req, "container-runtime");
  sel.state_root = flag(req, "container-state-root");
  std::string endpoint = flag(req, "cri-endpoint");
  if (!sel.state_root.empty() && sel.state_root.front() != '/')
    throw sdk::InvalidArgument("container-state-root '" + sel.state_root +
                               "' must be an absolute path");
  if (runtime.empty() && (!sel.state_root.empty() || !endpoint.empty()))
    throw sdk::InvalidArgument(
        std::string(endpoint.empty() ? "container-state-root" : "cri-endpoint") +
        " needs container-runtime: whose endpoint or state it is");
  if (runtime == "crun") {
    // crun writes runc's state format under its own root.
    runtime = "runc";
    if (sel.state_root.empty()) sel.state_root = kCrunRoot;
  } else if (runtime == "crio") {
    runtime = "cri-o";
  }
  if (!runtime.empty()) check_runtime(runtime);
  sel.runtime = runtime;

  if (!endpoint.empty()) {
    if (runtime == "runc")
      throw sdk::InvalidArgument(
          "cri-endpoint: runc has no endpoint; give its state dir with container-state-root");
    if (runtime == "cri-o")
      throw sdk::InvalidArgument(
          "cri-endpoint: CRI-O is read from its state files, not its socket; give its storage run "
          "root "
          "with container-state-root");
    sel.endpoint = socket_path("cri-endpoint", endpoint);
  }
  if (runtime == "docker" && !sel.state_root.empty())
    throw sdk::InvalidArgument(
        "container-state-root: docker is asked over its socket; give it with cri-endpoint");
  return sel;
}

}  // namespace blade::cri
