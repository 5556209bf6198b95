// What a container's OCI config.json and its runtime's annotations say
// about it, in the terms container-label-selector and container-name use:
// the annotations, the kubelet labels derived from containerd's CRI
// annotations, the kubelet's container name, and whether it is a pod
// sandbox (a pause container, never a fault's target).
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace blade::cri::oci {

using Labels = std::map<std::string, std::string>;

// The string annotations of an OCI config.json document ("annotations").
Labels annotations_of(const nlohmann::json &config);

// The annotations of <bundle>/config.json; empty when it cannot be read.
Labels bundle_annotations(const std::string &bundle);

// Adds each of `extra` that `labels` does not already have (the first
// source wins: a label over an annotation of the same key).
void merge_missing(Labels &labels, const Labels &extra);

// containerd's CRI plugin writes the pod and container names as
// io.kubernetes.cri.* annotations (the kubelet labels themselves stay in
// its metadata database): the kubelet labels they stand for, added when
// missing.
void add_kubelet_labels_from_cri(Labels &labels);

// The kubelet's container name: io.kubernetes.container.name, else
// containerd's io.kubernetes.cri.container-name; empty when neither.
std::string kubelet_container_name(const Labels &labels);

// A pod's sandbox (pause) container, as containerd, CRI-O and cri-dockerd
// mark it.
bool is_pod_sandbox(const Labels &labels);

}  // namespace blade::cri::oci
