#include "docker_resolver.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../../../common/handles.hpp"
#include "oci_labels.hpp"
#include "state_files.hpp"

namespace blade::cri {

namespace {

using nlohmann::json;

// Connects once to say why dockerd does not answer ("Connection refused")
// in the errno's words, which the HTTP client does not keep.
void probe(const std::string &socket) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket.size() >= sizeof addr.sun_path)
    throw Unavailable(socket + ": path too long for a UNIX socket");
  socket.copy(addr.sun_path, socket.size());
  plugins::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw Unavailable(state::describe_errno(socket, errno));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr *>(&addr), sizeof addr) != 0)
    throw Unavailable(state::describe_errno(socket, errno) + " (docker not running?)");
}

// One request to the Engine API; Unavailable when dockerd does not answer.
// nullopt for a 404 (no such container).
std::optional<json> api_get(const std::string &socket, const std::string &path,
                            const httplib::Params &params) {
  // Host and port: the socket path as the host, never parsed as a URL.
  httplib::Client cli(socket, 80);
  cli.set_address_family(AF_UNIX);
  // A stuck dockerd must not hold the daemon's call for long.
  cli.set_connection_timeout(std::chrono::seconds(2));
  cli.set_read_timeout(std::chrono::seconds(5));
  // dockerd checks the Host header; a socket path is not a valid one.
  httplib::Headers headers{{"Host", "docker"}};
  auto res = cli.Get(path, params, headers);
  if (!res) {
    // Worded from the socket itself (missing, refused, ...) only when the
    // request failed: a probe per request cost every call a second connect.
    struct stat st {};
    if (::stat(socket.c_str(), &st) != 0) {
      int err = errno;
      if (err == ENOENT) throw Unavailable("no socket at " + socket + " (docker not running?)");
      throw Unavailable(state::describe_errno(socket, err));
    }
    probe(socket);
    throw Unavailable(socket + ": " + httplib::to_string(res.error()));
  }
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

// The object under `key`, or an empty one (a field dockerd left null).
json object_at(const json &j, const char *key) {
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : json::object();
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
  const json st = object_at(*doc, "State");
  auto running = st.find("Running");
  if (running == st.end() || *running != true) return std::nullopt;
  auto pid = state::uint_at(st, "Pid");
  if (!pid || *pid == 0) return std::nullopt;
  auto start = state::live_start(static_cast<pid_t>(*pid), std::nullopt);
  if (!start) return std::nullopt;
  Container c;
  c.runtime = "docker";
  c.id = state::string_at(*doc, "Id");
  c.name = without_slash(state::string_at(*doc, "Name"));
  c.labels = string_map(object_at(object_at(*doc, "Config"), "Labels"));
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
  if (!doc || !doc->is_array())
    throw Unavailable(socket_ + ": GET /containers/json answered no list");
  Listing out;
  for (const auto &summary : *doc) {
    if (!summary.is_object()) continue;
    ++out.seen;
    // The summary has what matching needs (id, names, labels); only a
    // candidate is inspected for its pid.
    Container pre;
    pre.runtime = "docker";
    pre.id = state::string_at(summary, "Id");
    pre.labels = string_map(object_at(summary, "Labels"));
    if (auto names = summary.find("Names"); names != summary.end() && names->is_array() &&
                                            !names->empty() && names->front().is_string())
      pre.name = without_slash(names->front().get<std::string>());
    if (pre.id.empty() || (sel && !matches(pre, *sel))) continue;
    if (auto c = inspect(socket_, pre.id); c && (!sel || matches(*c, *sel)))
      out.matched.push_back(std::move(*c));
  }
  return out;
}

std::vector<Container> DockerResolver::list() const {
  return listing(nullptr).matched;
}

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
