#include "oci_labels.hpp"

#include "state_files.hpp"

namespace blade::cri::oci {

Labels annotations_of(const nlohmann::json &config) {
  Labels out;
  if (!config.is_object()) return out;
  auto it = config.find("annotations");
  if (it == config.end() || !it->is_object()) return out;
  for (const auto &[k, v] : it->items())
    if (v.is_string()) out.emplace(k, v.get<std::string>());
  return out;
}

Labels bundle_annotations(const std::string &bundle) {
  if (bundle.empty()) return {};
  auto doc = state::read_json(bundle + "/config.json");
  return doc ? annotations_of(*doc) : Labels{};
}

void merge_missing(Labels &labels, const Labels &extra) {
  for (const auto &[k, v] : extra)
    labels.emplace(k, v);
}

void add_kubelet_labels_from_cri(Labels &labels) {
  static const std::pair<const char *, const char *> kCriToKubelet[] = {
      {"io.kubernetes.cri.container-name", "io.kubernetes.container.name"},
      {"io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"},
      {"io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace"},
      {"io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid"},
  };
  for (const auto &[cri, kubelet] : kCriToKubelet) {
    auto it = labels.find(cri);
    if (it != labels.end()) labels.emplace(kubelet, it->second);
  }
}

std::string kubelet_container_name(const Labels &labels) {
  for (const char *key : {"io.kubernetes.container.name", "io.kubernetes.cri.container-name"}) {
    auto it = labels.find(key);
    if (it != labels.end() && !it->second.empty()) return it->second;
  }
  return {};
}

bool is_pod_sandbox(const Labels &labels) {
  auto is = [&](const char *key, const char *value) {
    auto it = labels.find(key);
    return it != labels.end() && it->second == value;
  };
  return is("io.kubernetes.cri.container-type", "sandbox") ||
         is("io.kubernetes.cri-o.ContainerType", "sandbox") ||
         is("io.kubernetes.docker.type", "podsandbox");
}

}  // namespace blade::cri::oci
