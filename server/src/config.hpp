// bladed's configuration: flags beat environment beat the YAML config file
// beat defaults. Every option has one name used in all three places
// (--state-dir, BLADE_STATE_DIR, state-dir:).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "blade/core/log.hpp"

namespace blade::server {

struct Config {
  std::string bind = "127.0.0.1";
  int port = 9526;
  std::string token;     // empty: none configured
  bool no_auth = false;  // allowed on a loopback bind only
  std::vector<std::filesystem::path> plugin_dirs;
  std::filesystem::path install_plugin_dir;
  std::filesystem::path state_dir = "/var/lib/blade";
  log::Level log_level = log::Level::Info;
  log::Format log_format = log::Format::Text;
  std::optional<std::filesystem::path> port_file;  // written once listening
  std::filesystem::path sqlite_path;               // default <state_dir>/blade.db
  bool exec_external = false;                      // BLADE_EXEC_MODE=external
  // ChaosBlade's home (bin/chaos_os, yaml/*.yaml) for the external fallback;
  // empty: no fallback.
  std::filesystem::path chaosblade_home;
  bool keep_faults_on_exit = false;  // SIGTERM leaves active faults in place
  int workers = 4;
};

enum class Command { Serve, Recover, CheckPlugin, Help, Version };

struct Invocation {
  Command command = Command::Serve;
  Config config;
  std::filesystem::path plugin_file;  // check-plugin
  std::string help_text;
};

// Parses argv, the environment and the config file named by --config or
// BLADE_CONFIG. Throws std::invalid_argument with a message naming the
// option (and the file) for anything invalid.
Invocation parse_invocation(int argc, const char *const *argv);

bool is_loopback(const std::string &address);

}  // namespace blade::server
