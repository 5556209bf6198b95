// bladed's configuration: flags beat environment beat the YAML config file
// beat defaults. Every option has one name used in all three places
// (--state-dir, BLADE_STATE_DIR, state-dir:).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "blade/core/model/log.hpp"
#include "http/tokens.hpp"

namespace blade::server {

struct Config {
  std::string bind = "127.0.0.1";
  int port = 9526;
  std::string token;             // empty: none configured; else the admin token "default"
  std::vector<ApiToken> tokens;  // the config file's tokens: list
  bool no_auth = false;          // allowed on a loopback bind only
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
  // TLS: both or neither.
  std::filesystem::path tls_cert;
  std::filesystem::path tls_key;
  double rate_limit = 50;         // requests per second per token; 0 = none
  double auth_failure_rate = 5;   // failed authentications per second per client
  std::int64_t max_active = 100;  // active experiments; 0 = no cap
  int read_timeout = 10;          // seconds to receive a request's headers and body, in all
  int write_timeout = 10;         // seconds a stalled client may hold a response
  int keep_alive_timeout = 5;     // seconds an idle connection waits for its next request
  int http_threads = 24;          // connection threads kept ready; more start as needed
  int max_connections = 512;      // open connections, in all
  int max_connections_per_address = 128;  // open connections from one client address
  int max_event_streams = 8;      // concurrent GET /v1/events clients
  int max_config_streams = 16;    // concurrent GET /v1/config/stream clients
  // Seconds between keep-alive comments on an idle config stream.
  double config_stream_keepalive = 15;
  int sync_timeout = 30;          // seconds a synchronous create/destroy waits; then 503
  // The config file's plugins: map, one JSON object text per plugin name
  // (config file only); each is validated when its plugin loads.
  std::map<std::string, std::string> plugin_configs;

  // Every token: the config file's list plus BLADE_API_TOKEN as "default".
  std::vector<ApiToken> all_tokens() const;
};

enum class Command { Serve, Recover, CheckPlugin, Help, Version };

struct Invocation {
  Command command = Command::Serve;
  Config config;
  std::filesystem::path plugin_file;  // check-plugin
  // check-plugin --config FILE.yaml: the plugins: sections are in
  // config.plugin_configs (the rest of the file is checked, not used).
  std::filesystem::path check_config_file;
  std::string help_text;
};

// Parses argv, the environment and the config file named by --config or
// BLADE_CONFIG. Throws std::invalid_argument with a message naming the
// option (and the file) for anything invalid.
Invocation parse_invocation(int argc, const char *const *argv);

// The plugins: sections of config file `file` (the rest of it is checked as
// bladed would check it, not used), for check-plugin's --config. Throws
// std::invalid_argument naming the file and the key for anything invalid.
std::map<std::string, std::string> read_plugin_configs(const std::string &file);

bool is_loopback(const std::string &address);

}  // namespace blade::server
