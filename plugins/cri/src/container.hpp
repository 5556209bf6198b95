// One running container, as its runtime's own state tells it: what the cri
// plugin aims a fault at, and what its restore record names.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace blade::cri {

struct Container {
  std::string runtime;  // "runc", "containerd", "cri-o" or "docker"
  std::string id;       // the full id
  // docker's name (without the leading '/'); elsewhere the kubelet's
  // container name (label/annotation io.kubernetes.container.name, or
  // containerd's io.kubernetes.cri.container-name); may be empty.
  std::string name;
  // Labels and annotations, merged (a label wins over an annotation of the
  // same key): what container-label-selector matches.
  std::map<std::string, std::string> labels;
  int init_pid = 0;              // host pid of the container's init
  std::uint64_t init_start = 0;  // its start time: /proc/<pid>/stat field 22
  std::string bundle;            // the OCI bundle dir, when the runtime says
  std::string ns;                // containerd's namespace; empty elsewhere
};

}  // namespace blade::cri
