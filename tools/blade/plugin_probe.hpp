// Loading a plugin file the way bladed would (core's loader: file checks,
// dlopen, ABI handshake, spec YAML, init), in a forked child so that a
// plugin that crashes or hangs cannot take blade down with it.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

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
};

// Never throws for a bad plugin: a refusal, a crash (by signal) or a hang
// comes back as !loaded with the reason.
ProbedPlugin probe_plugin(const std::filesystem::path &file);

}  // namespace blade::cli
