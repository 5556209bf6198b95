// Loading a plugin file the way bladed would (core's loader: file checks,
// dlopen, ABI handshake, spec YAML, init), in a forked child so that a
// plugin that crashes or hangs cannot take blade down with it.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace blade::cli {

struct PluginRoute {
  std::string scope;
  std::string target;
  std::string name;  // the action or one of its aliases
};

struct ProbedPlugin {
  bool loaded = false;
  std::string error;  // why not, when !loaded
  std::string name;
  std::string version;
  std::string abi;
  std::vector<std::string> targets;  // "scope target action"
  std::vector<PluginRoute> routes;   // every action and alias
  nlohmann::json specs;              // its GET /v1/specs entries
};

// Never throws for a bad plugin: a refusal, a crash (by signal) or a hang
// comes back as !loaded with the reason.
ProbedPlugin probe_plugin(const std::filesystem::path &file);

// What bladed would serve from the plugin files in `dir` (each probed as
// above; refused ones left out), in GET /v1/specs's shape: help for when
// the daemon cannot be asked.
nlohmann::json specs_of_plugin_dir(const std::filesystem::path &dir);

}  // namespace blade::cli
