// The cri plugin's configuration (its section of bladed's config file): the
// runtimes' state roots and where blade-cri-helper is; and the per-request
// overrides of the roots (flags container-state-root, cri-endpoint).
#pragma once

#include <string>

#include <blade/plugin.hpp>

#include "resolver.hpp"

namespace blade::cri {

// Validated by bladed before the plugin sees it.
inline constexpr const char *kConfigSchema = R"json({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "helper_path": {"type": "string", "minLength": 1,
      "description": "blade-cri-helper; default: the one next to cri.so"},
    "runc_root": {"type": "string", "minLength": 1, "default": "/run/runc",
      "description": "runc's --root: its containers' state.json"},
    "containerd_state": {"type": "string", "minLength": 1, "default": "/run/containerd",
      "description": "containerd's state dir (its io.containerd.runtime.v2.task/<ns>/<id>/)"},
    "containerd_runc_root": {"type": "string", "minLength": 1, "default": "/run/containerd/runc",
      "description": "the runc root containerd's shim uses"},
    "crio_storage": {"type": "string", "minLength": 1, "default": "/run/containers/storage",
      "description": "CRI-O's containers' run dir (userdata)"},
    "crio_runc_root": {"type": "string", "minLength": 1, "default": "/run/runc",
      "description": "the runc root CRI-O uses"},
    "docker_socket": {"type": "string", "minLength": 1, "default": "/var/run/docker.sock",
      "description": "docker's API socket"}
  }
})json";

struct PluginConfig {
  RuntimeRoots roots;
  std::string helper_path;
};

// From Host::config_json; the helper path defaults to blade-cri-helper in
// the directory cri.so was loaded from.
PluginConfig plugin_config(const sdk::Host &host);

// `base` with the request's container-state-root (the root of the runtime
// container-runtime names) and cri-endpoint (docker's socket) applied.
// InvalidArgument naming the flag for a relative path, or a state root
// without a runtime to apply it to.
RuntimeRoots roots_for(const sdk::Request &req, RuntimeRoots base);

}  // namespace blade::cri
