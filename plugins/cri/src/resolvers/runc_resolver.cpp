#include "runc_resolver.hpp"

#include "state_files.hpp"

namespace blade::cri {

namespace {
constexpr const char *kAbsent = "no container ever ran here";
}  // namespace

std::optional<RuncState> read_runc_state(const std::string &path) {
  auto doc = state::read_json(path);
  if (!doc || !doc->is_object()) return std::nullopt;
  auto pid = state::uint_at(*doc, "init_process_pid");
  if (!pid || *pid == 0) return std::nullopt;
  RuncState s;
  s.id = state::string_at(*doc, "id");
  s.init_pid = static_cast<pid_t>(*pid);
  s.init_start = state::uint_at(*doc, "init_process_start");
  auto config = doc->find("config");
  if (config != doc->end() && config->is_object()) {
    auto labels = config->find("labels");
    if (labels != config->end() && labels->is_array()) {
      for (const auto &l : *labels) {
        if (!l.is_string()) continue;
        const auto &kv = l.get_ref<const std::string &>();
        auto eq = kv.find('=');
        if (eq == std::string::npos) continue;
        std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
        if (key == "bundle")
          s.bundle = std::move(value);
        else
          s.labels.emplace(std::move(key), std::move(value));
      }
    }
  }
  return s;
}

std::optional<Container> RuncResolver::load(const std::string &id) const {
  auto s = read_runc_state(root_ + "/" + id + "/state.json");
  // The directory's name is the id runc uses; a state naming another id is
  // not this container's.
  if (!s || (!s->id.empty() && s->id != id)) return std::nullopt;
  auto start = state::live_start(s->init_pid, s->init_start);
  if (!start) return std::nullopt;
  Container c;
  c.runtime = "runc";
  c.id = id;
  c.labels = std::move(s->labels);
  oci::merge_missing(c.labels, oci::bundle_annotations(s->bundle));
  if (oci::is_pod_sandbox(c.labels)) return std::nullopt;
  c.name = oci::kubelet_container_name(c.labels);
  c.init_pid = s->init_pid;
  c.init_start = *start;
  c.bundle = std::move(s->bundle);
  return c;
}

std::vector<Container> RuncResolver::list() const {
  std::vector<Container> out;
  for (const auto &id : state::subdirs_or_unavailable(root_, kAbsent))
    if (auto c = load(id)) out.push_back(std::move(*c));
  return out;
}

std::optional<Container> RuncResolver::get(const std::string &id) const {
  // Unavailable only when the root itself is unreadable: a missing id is a
  // deleted container.
  state::subdirs_or_unavailable(root_, kAbsent);
  return load(id);
}

}  // namespace blade::cri
