// The cri plugin's configuration (its section of bladed's config file): the
// runtimes' state roots (a request's container-state-root / cri-endpoint
// override them: effective_roots in resolver.hpp) and where
// blade-cri-helper is.
#pragma once

#include <string>

#include <blade/plugin.hpp>

#include "resolver.hpp"

namespace blade::cri {

// Validated by bladed before the plugin sees it. Each root left out keeps
// its runtime's own default (RuntimeRoots in resolver.hpp, the one place
// they are written).
inline constexpr const char *kConfigSchema = R"json({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "helper_path": {"type": "string", "minLength": 1,
      "description": "blade-cri-helper; default: the one next to cri.so"},
    "runc_root": {"type": "string", "minLength": 1,
      "description": "runc's --root: its containers' state.json"},
    "containerd_state": {"type": "string", "minLength": 1,
      "description": "containerd's state dir (its io.containerd.runtime.v2.task/<ns>/<id>/)"},
    "containerd_runc_root": {"type": "string", "minLength": 1,
      "description": "the runc root containerd's shim uses"},
    "crio_storage": {"type": "string", "minLength": 1,
      "description": "CRI-O's containers' run dir (userdata)"},
    "crio_runc_root": {"type": "string", "minLength": 1,
      "description": "the runc root CRI-O uses"},
    "docker_socket": {"type": "string", "minLength": 1,
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

}  // namespace blade::cri
