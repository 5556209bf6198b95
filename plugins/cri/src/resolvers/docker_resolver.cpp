#include "docker_resolver.hpp"

#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "oci_labels.hpp"
#include "state_files.hpp"

namespace blade::cri {

namespace {

using nlohmann::json;

// One request to the Engine API; Unavailable when dockerd does not answer.
// nullopt for a 404 (no such container).
std::optional<json> api_get(const std::string &socket, const std::string &path,
                            const httplib::Params &params) {
  struct stat st {};
  if (::stat(socket.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT) throw Unavailable("no socket at " + socket + " (docker not running?)");
    throw Unavailable(state::describe_errno(socket, err));
  }
  httplib::Client cli(socket);
  cli.set_address_family(AF_UNIX);
  // A stuck dockerd must not hold the daemon's call for long.
  cli.set_connection_timeout(std::chrono::seconds(2));
  cli.set_read_timeout(std::chrono::seconds(5));
  // dockerd checks the Host header; a socket path is not a valid one.
  httplib::Headers headers{{"Host", "docker"}};
  auto res = cli.Get(path, params, headers);
  if (!res) throw Unavailable(socket + ": " + httplib::to_string(res.error()));
  if (res->status == 404) return std::nullopt;
  auto doc = json::parse(res->body, nullptr, false);
  if (res->status != 200) {
    std::string why = doc.is_object() ? state::string_at(doc, "message") : res->body.substr(0, 200);
    throw Unavailable(socket + ": GET " + path + " answered " + std::to_string(res->status) +
                      (why.empty() ? "" : ": " + why));
  }
  if (doc.is_discarded()) throw Unavailable(socket + ": GET " + path + " answered no JSON");
  return doc;
}

oci::Labels string_map(const json &j) {
  oci::Labels out;
  if (j.is_object())
    for (const auto &[k, v] : j.items())
      if (v.is_string()) out.emplace(k, v.get<std::string>());
  return out;
}

std::string without_slash(std::string name) {
  if (!name.empty() && name.front() == '/') name.erase(0, 1);
  return name;
}

// GET /containers/<id>/json: the container when it runs and its pid lives.
std::optional<Container> inspect(const std::string &socket, const std::string &id) {
  auto doc = api_get(socket, "/containers/" + id + "/json", {});
  if (!doc || !doc->is_object()) return std::nullopt;
  const json &st = doc->value("State", json::object());
  if (!st.is_object() || !st.value("Running", false)) return std::nullopt;
  auto pid = state::uint_at(st, "Pid");
  if (!pid || *pid == 0) return std::nullopt;
  auto start = state::live_start(static_cast<pid_t>(*pid), std::nullopt);
  if (!start) return std::nullopt;
  Container c;
  c.runtime = "docker";
  c.id = state::string_at(*doc, "Id");
  c.name = without_slash(state::string_at(*doc, "Name"));
  c.labels = string_map(doc->value("Config", json::object()).value("Labels", json::object()));
  if (oci::is_pod_sandbox(c.labels)) return std::nullopt;
  c.init_pid = static_cast<pid_t>(*pid);
  c.init_start = *start;
  return c;
}

}  // namespace

Resolver::Listing DockerResolver::listing(const Selector *sel) const {
  // Only running containers, and (when selecting) only those with every
  // label asked for: dockerd filters, the rest is inspected one by one.
  json filters = {{"status", json::array({"running"})}};
  if (sel && !sel->labels.empty()) {
    json terms = json::array();
    for (const auto &[k, v] : sel->labels)
      terms.push_back(k + "=" + v);
    filters["label"] = terms;
  }
  auto doc = api_get(socket_, "/containers/json", {{"filters", filters.dump()}});
  if (!doc || !doc->is_array()) throw Unavailable(socket_ + ": GET /containers/json answered no list");
  Listing out;
  for (const auto &summary : *doc) {
    if (!summary.is_object()) continue;
    ++out.seen;
    // The summary has what matching needs (id, names, labels); only a
    // candidate is inspected for its pid.
    Container pre;
    pre.runtime = "docker";
    pre.id = state::string_at(summary, "Id");
    pre.labels = string_map(summary.value("Labels", json::object()));
    const json &names = summary.value("Names", json::array());
    if (names.is_array() && !names.empty() && names[0].is_string())
      pre.name = without_slash(names[0].get<std::string>());
    if (pre.id.empty() || (sel && !matches(pre, *sel))) continue;
    if (auto c = inspect(socket_, pre.id); c && (!sel || matches(*c, *sel)))
      out.matched.push_back(std::move(*c));
  }
  return out;
}

std::vector<Container> DockerResolver::list() const { return listing(nullptr).matched; }

Resolver::Listing DockerResolver::list_matching(const Selector &sel) const {
  return listing(&sel);
}

std::optional<Container> DockerResolver::get(const std::string &id) const {
  // dockerd also resolves names and id prefixes here; only the exact id is
  // the container asked for.
  auto c = inspect(socket_, id);
  if (c && c->id != id) return std::nullopt;
  return c;
}

}  // namespace blade::cri
