#include "crio_resolver.hpp"

#include <string_view>

#include "oci_labels.hpp"
#include "runc_resolver.hpp"
#include "state_files.hpp"

namespace blade::cri {

namespace {

constexpr std::string_view kContainersSuffix = "-containers";

// The labels CRI-O keeps as a JSON object in one annotation.
oci::Labels json_object_annotation(const oci::Labels &annotations, const char *key) {
  oci::Labels out;
  auto it = annotations.find(key);
  if (it == annotations.end()) return out;
  auto doc = nlohmann::json::parse(it->second, nullptr, false);
  if (!doc.is_object()) return out;
  for (const auto &[k, v] : doc.items())
    if (v.is_string()) out.emplace(k, v.get<std::string>());
  return out;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> CrioResolver::userdata_dirs() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto &driver : state::subdirs_or_unavailable(storage_, "CRI-O not running?")) {
    if (driver.size() <= kContainersSuffix.size() || !driver.ends_with(kContainersSuffix)) continue;
    const std::string dir = storage_ + "/" + driver;
    for (const auto &id : state::subdirs(dir).value_or(std::vector<std::string>{}))
      out.emplace_back(id, dir + "/" + id + "/userdata");
  }
  return out;
}

std::optional<Container> CrioResolver::load(const std::string &id,
                                            const std::string &userdata) const {
  auto st = state::read_json(userdata + "/state.json");
  auto config = state::read_json(userdata + "/config.json");
  if (!st && !config) return std::nullopt;  // not a container CRI-O runs
  nlohmann::json state_doc = st ? *st : nlohmann::json::object();
  if (auto status = state::string_at(state_doc, "status"); !status.empty() && status != "running")
    return std::nullopt;

  std::optional<pid_t> pid;
  for (const char *key : {"initPid", "pid"})
    if (auto v = state::uint_at(state_doc, key); v && *v > 0 && !pid) pid = static_cast<pid_t>(*v);
  if (!pid) pid = state::read_pid_file(userdata + "/pidfile");
  if (!pid) return std::nullopt;
  std::optional<std::uint64_t> recorded = state::uint_at(state_doc, "initStartTime");
  if (!recorded)
    if (auto runc = read_runc_state(runc_root_ + "/" + id + "/state.json");
        runc && runc->init_pid == *pid)
      recorded = runc->init_start;
  auto start = state::live_start(*pid, recorded);
  if (!start) return std::nullopt;

  auto annotations = config ? oci::annotations_of(*config) : oci::annotations_of(state_doc);
  Container c;
  c.runtime = "cri-o";
  c.id = id;
  c.labels = json_object_annotation(annotations, "io.kubernetes.cri-o.Labels");
  oci::merge_missing(c.labels, annotations);
  if (oci::is_pod_sandbox(c.labels)) return std::nullopt;
  c.name = oci::kubelet_container_name(c.labels);
  if (c.name.empty()) {
    auto metadata = json_object_annotation(annotations, "io.kubernetes.cri-o.Metadata");
    if (auto it = metadata.find("name"); it != metadata.end()) c.name = it->second;
  }
  c.init_pid = *pid;
  c.init_start = *start;
  c.bundle = userdata;
  return c;
}

std::vector<Container> CrioResolver::list() const {
  std::vector<Container> out;
  for (const auto &[id, userdata] : userdata_dirs())
    if (auto c = load(id, userdata)) out.push_back(std::move(*c));
  return out;
}

std::optional<Container> CrioResolver::get(const std::string &id) const {
  for (const auto &[dir_id, userdata] : userdata_dirs())
    if (dir_id == id) return load(id, userdata);
  return std::nullopt;
}

}  // namespace blade::cri
