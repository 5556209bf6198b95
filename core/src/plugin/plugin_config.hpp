// A plugin's configuration at load (ABI 1.3): the schema its descriptor
// declares, checked, and its section of bladed's config file validated
// against it, defaults filled in.
#pragma once

#include <string>

#include <blade/plugin.h>

#include "blade/core/plugin/loaded_plugin.hpp"

namespace blade {

struct PluginConfig {
  bool configured = false;         // the config file has a section for the plugin
  std::string schema_json;         // the declared schema, re-serialised; "" when none
  std::string config_json = "{}";  // what host_info.config_json points to
};

// Reads config_schema only when the descriptor's struct_size holds it (a
// 1.0-1.2 plugin declares none). Throws PluginRefused, naming the plugin,
// when the schema is not valid JSON or leaves the supported subset, when a
// section is given to a plugin that declares no schema, or when the section
// fails validation (every problem, each as "plugins.<name>.<path>: why").
PluginConfig plugin_config(const blade_plugin_descriptor &d, const HostSettings &settings);

}  // namespace blade
