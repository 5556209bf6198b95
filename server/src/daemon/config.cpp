#include "config.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>
#include <boost/program_options.hpp>

#include "blade/core/plugin/config_schema.hpp"
#include "build_info.hpp"
#include "yaml_json.hpp"

namespace po = boost::program_options;

namespace blade::server {
namespace {

// Option name -> environment variable: BLADE_ plus the option, except
// BLADE_API_TOKEN for --token (the name every client already uses).
const std::map<std::string, std::string> kEnvNames = {
    {"bind", "BLADE_BIND"},
    {"port", "BLADE_PORT"},
    {"token", "BLADE_API_TOKEN"},
    {"no-auth", "BLADE_NO_AUTH"},
    {"plugin-dir", "BLADE_PLUGIN_DIR"},
    {"no-install-plugin-dir", "BLADE_NO_INSTALL_PLUGIN_DIR"},
    {"state-dir", "BLADE_STATE_DIR"},
    {"log-level", "BLADE_LOG_LEVEL"},
    {"log-format", "BLADE_LOG_FORMAT"},
    {"config", "BLADE_CONFIG"},
    {"sqlite-path", "BLADE_SQLITE_PATH"},
    {"exec-mode", "BLADE_EXEC_MODE"},
    {"chaosblade-home", "BLADE_CHAOSBLADE_HOME"},
    {"keep-faults-on-exit", "BLADE_KEEP_FAULTS_ON_EXIT"},
    {"workers", "BLADE_WORKERS"},
    {"tls-cert", "BLADE_TLS_CERT"},
    {"tls-key", "BLADE_TLS_KEY"},
    {"rate-limit", "BLADE_RATE_LIMIT"},
    {"max-active", "BLADE_MAX_ACTIVE"},
    {"read-timeout", "BLADE_READ_TIMEOUT"},
    {"write-timeout", "BLADE_WRITE_TIMEOUT"},
    {"keep-alive-timeout", "BLADE_KEEP_ALIVE_TIMEOUT"},
    {"http-threads", "BLADE_HTTP_THREADS"},
    {"max-connections", "BLADE_MAX_CONNECTIONS"},
    {"max-connections-per-address", "BLADE_MAX_CONNECTIONS_PER_ADDRESS"},
    {"max-event-streams", "BLADE_MAX_EVENT_STREAMS"},
    {"max-config-streams", "BLADE_MAX_CONFIG_STREAMS"},
    {"config-stream-keepalive", "BLADE_CONFIG_STREAM_KEEPALIVE"},
    {"sync-timeout", "BLADE_SYNC_TIMEOUT"},
};

po::options_description options_description(const Config &defaults) {
  po::options_description d("bladed options (flags beat environment beat config file)");
  // clang-format off
  d.add_options()
    ("help,h", "show this help and exit")
    ("version", "print the version and exit")
    ("config", po::value<std::string>(),
     "YAML config file whose keys are these option names (env BLADE_CONFIG)")
    ("bind", po::value<std::string>()->default_value(defaults.bind),
     "address to listen on (env BLADE_BIND)")
    ("port", po::value<int>()->default_value(defaults.port),
     "TCP port, 0 for any free port (env BLADE_PORT)")
    ("token", po::value<std::string>(),
     "API token clients must send; prefer the env BLADE_API_TOKEN or the config "
     "file, a flag is visible in ps")
    ("no-auth", po::value<bool>()->implicit_value(true)->default_value(false),
     "serve without a token; refused unless --bind is a loopback address (env BLADE_NO_AUTH=1)")
    ("plugin-dir", po::value<std::vector<std::string>>(),
     "directory of plugin .so files, repeatable; searched before BLADE_PLUGIN_PATH and the "
     "install dir (env BLADE_PLUGIN_DIR, colon-separated)")
    ("no-install-plugin-dir", po::value<bool>()->implicit_value(true)->default_value(false),
     "load plugins only from --plugin-dir and BLADE_PLUGIN_PATH, not the install dir: a "
     "development build's plugins would clash with installed copies of themselves "
     "(env BLADE_NO_INSTALL_PLUGIN_DIR=1)")
    ("state-dir", po::value<std::string>()->default_value(defaults.state_dir.string()),
     "where bladed keeps its state, plugins' backups included (env BLADE_STATE_DIR)")
    ("log-level", po::value<std::string>()->default_value("info"),
     "debug, info, warn or error (env BLADE_LOG_LEVEL)")
    ("log-format", po::value<std::string>()->default_value("auto"),
     "text, json (one object per line), or auto: text on a terminal, json otherwise "
     "(env BLADE_LOG_FORMAT)")
    ("port-file", po::value<std::string>(),
     "write the port actually listened on to this file once ready")
    ("sqlite-path", po::value<std::string>(),
     "the SQLite database (env BLADE_SQLITE_PATH; default <state-dir>/blade.db)")
    ("exec-mode", po::value<std::string>()->default_value("inprocess"),
     "inprocess: plugins first, chaosblade-exec binaries for what no plugin serves; "
     "external: the binaries first (env BLADE_EXEC_MODE)")
    ("chaosblade-home", po::value<std::string>(),
     "ChaosBlade's directory (bin/chaos_os, yaml/chaosblade-*-spec-*.yaml) for the external "
     "fallback (env BLADE_CHAOSBLADE_HOME)")
    ("keep-faults-on-exit", po::value<bool>()->implicit_value(true)->default_value(false),
     "on SIGTERM leave active faults in place instead of rolling them back; the next start "
     "still rolls them back (env BLADE_KEEP_FAULTS_ON_EXIT)")
    ("workers", po::value<int>()->default_value(defaults.workers),
     "threads running experiment jobs (env BLADE_WORKERS)")
    ("tls-cert", po::value<std::string>(),
     "PEM certificate chain: serve HTTPS (with --tls-key; env BLADE_TLS_CERT)")
    ("tls-key", po::value<std::string>(),
     "PEM private key for --tls-cert (env BLADE_TLS_KEY)")
    ("rate-limit", po::value<double>()->default_value(defaults.rate_limit),
     "requests per second per token, bursts of twice that; 0 turns it off; a token's own "
     "rate-limit: in the config file wins (env BLADE_RATE_LIMIT)")
    ("max-active", po::value<std::int64_t>()->default_value(defaults.max_active),
     "refuse creates (429) while this many experiments are active; 0 = no cap "
     "(env BLADE_MAX_ACTIVE)")
    ("read-timeout", po::value<int>()->default_value(defaults.read_timeout),
     "seconds a client has to send a request's headers and body, in all, from its first "
     "byte; then the connection is closed (env BLADE_READ_TIMEOUT)")
    ("write-timeout", po::value<int>()->default_value(defaults.write_timeout),
     "seconds a stalled client may hold up a response (env BLADE_WRITE_TIMEOUT)")
    ("keep-alive-timeout", po::value<int>()->default_value(defaults.keep_alive_timeout),
     "seconds a connection may wait for its next request (its first too) before it is "
     "closed (env BLADE_KEEP_ALIVE_TIMEOUT)")
    ("http-threads", po::value<int>()->default_value(defaults.http_threads),
     "connection threads kept ready; each connection has a thread, more start as needed up "
     "to max-connections (env BLADE_HTTP_THREADS)")
    ("max-connections", po::value<int>()->default_value(defaults.max_connections),
     "open connections in all; more are answered 503 and closed (env BLADE_MAX_CONNECTIONS)")
    ("max-connections-per-address",
     po::value<int>()->default_value(defaults.max_connections_per_address),
     "open connections from one client address; more are answered 429 and closed, so one "
     "address cannot take them all (env BLADE_MAX_CONNECTIONS_PER_ADDRESS)")
    ("max-event-streams", po::value<int>()->default_value(defaults.max_event_streams),
     "concurrent GET /v1/events clients; more get 429 (env BLADE_MAX_EVENT_STREAMS)")
    ("max-config-streams", po::value<int>()->default_value(defaults.max_config_streams),
     "concurrent GET /v1/config/stream clients (data planes following the HTTP fault rules); "
     "more get 429 (env BLADE_MAX_CONFIG_STREAMS)")
    ("config-stream-keepalive",
     po::value<double>()->default_value(defaults.config_stream_keepalive),
     "seconds between keep-alive comments on an idle config stream, fractions allowed "
     "(env BLADE_CONFIG_STREAM_KEEPALIVE)")
    ("sync-timeout", po::value<int>()->default_value(defaults.sync_timeout),
     "seconds a synchronous create or destroy waits for its executor before answering 503; "
     "the job goes on and can be followed by uid (env BLADE_SYNC_TIMEOUT)");
  // clang-format on
  return d;
}

// A config file entry as the one or more strings program_options expects.
std::vector<std::string> yaml_values(const std::string &key, const YAML::Node &node) {
  std::vector<std::string> out;
  if (node.IsScalar()) {
    out.push_back(node.as<std::string>());
  } else if (node.IsSequence() && key == "plugin-dir") {
    for (const auto &item : node) {
      if (!item.IsScalar()) throw std::invalid_argument("plugin-dir: entries must be strings");
      out.push_back(item.as<std::string>());
    }
  } else {
    throw std::invalid_argument(fmt::format("{}: expected a single value", key));
  }
  return out;
}

// `plugins:` maps plugin names to their configuration sections, each a
// mapping of any YAML, kept as JSON text for the loader to validate.
std::map<std::string, std::string> plugin_configs_from_yaml(const YAML::Node &node) {
  if (!node.IsMap()) throw std::invalid_argument("plugins: expected a mapping of plugin names");
  std::map<std::string, std::string> out;
  for (const auto &entry : node) {
    if (!entry.first.IsScalar()) throw std::invalid_argument("plugins: keys must be plugin names");
    const std::string name = entry.first.Scalar();
    const std::string path = "plugins." + name;
    if (out.count(name)) throw std::invalid_argument(fmt::format("{}: duplicate section", path));
    if (!entry.second.IsMap())
      throw std::invalid_argument(fmt::format("{}: expected a mapping (use {{}} for none)", path));
    out[name] = yaml_to_json(entry.second, path, kMaxConfigDepth).dump();
  }
  return out;
}

// `tokens` and `plugins` are not options (they hold mappings), so they are
// handed back separately.
po::parsed_options parse_config_file(const std::string &file, const po::options_description &desc,
                                     std::vector<ApiToken> &tokens,
                                     std::map<std::string, std::string> &plugin_configs) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::Exception &e) {
    throw std::invalid_argument(fmt::format("config file {}: {}", file, e.what()));
  }
  po::parsed_options parsed(&desc);
  if (root.IsNull()) return parsed;
  if (!root.IsMap())
    throw std::invalid_argument(fmt::format("config file {}: expected a mapping", file));
  for (const auto &entry : root) {
    auto key = entry.first.as<std::string>();
    if (key == "tokens") {
      try {
        tokens = tokens_from_yaml(entry.second);
      } catch (const std::invalid_argument &e) {
        throw std::invalid_argument(fmt::format("config file {}: {}", file, e.what()));
      }
      continue;
    }
    if (key == "plugins") {
      try {
        plugin_configs = plugin_configs_from_yaml(entry.second);
      } catch (const std::invalid_argument &e) {
        throw std::invalid_argument(fmt::format("config file {}: {}", file, e.what()));
      }
      continue;
    }
    if (key == "help" || key == "version" || key == "config" || !desc.find_nothrow(key, false)) {
      throw std::invalid_argument(fmt::format("config file {}: unknown key '{}'", file, key));
    }
    try {
      parsed.options.emplace_back(key, yaml_values(key, entry.second));
    } catch (const std::invalid_argument &e) {
      throw std::invalid_argument(fmt::format("config file {}: {}", file, e.what()));
    }
  }
  return parsed;
}

std::vector<std::string> split_colon(const std::string &s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ':'))
    if (!part.empty()) out.push_back(part);
  return out;
}

po::parsed_options parse_env(const po::options_description &desc) {
  po::parsed_options parsed(&desc);
  for (const auto &[option, env] : kEnvNames) {
    const char *value = std::getenv(env.c_str());
    if (!value || option == "config") continue;
    if (option == "plugin-dir") {
      parsed.options.emplace_back(option, split_colon(value));
    } else {
      parsed.options.emplace_back(option, std::vector<std::string>{value});
    }
  }
  return parsed;
}

template <class T>
T in_range(const po::variables_map &vm, const char *name, T low, T high) {
  T v = vm[name].as<T>();
  if (v < low || v > high)
    throw std::invalid_argument(fmt::format("{}: {} is not in {}..{}", name, v, low, high));
  return v;
}

Config to_config(const po::variables_map &vm, std::vector<ApiToken> tokens,
                 std::map<std::string, std::string> plugin_configs) {
  Config c;
  c.tokens = std::move(tokens);
  c.plugin_configs = std::move(plugin_configs);
  c.bind = vm["bind"].as<std::string>();
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, c.bind.c_str(), &v4) != 1 &&
      inet_pton(AF_INET6, c.bind.c_str(), &v6) != 1) {
    throw std::invalid_argument(fmt::format("bind: '{}' is not an IP address", c.bind));
  }
  c.port = vm["port"].as<int>();
  if (c.port < 0 || c.port > 65535)
    throw std::invalid_argument(fmt::format("port: {} is not in 0..65535", c.port));
  if (vm.count("token")) c.token = vm["token"].as<std::string>();
  c.no_auth = vm["no-auth"].as<bool>();
  if (vm.count("plugin-dir"))
    for (const auto &d : vm["plugin-dir"].as<std::vector<std::string>>())
      c.plugin_dirs.emplace_back(d);
  if (!vm["no-install-plugin-dir"].as<bool>()) c.install_plugin_dir = BLADE_PLUGIN_INSTALL_DIR;
  c.state_dir = vm["state-dir"].as<std::string>();
  if (c.state_dir.empty()) throw std::invalid_argument("state-dir: must not be empty");
  auto level = log::level_from_string(vm["log-level"].as<std::string>());
  if (!level) throw std::invalid_argument("log-level: expected debug, info, warn or error");
  c.log_level = *level;
  const std::string format_name = vm["log-format"].as<std::string>();
  // A person reads a terminal; journald, kubectl logs and collectors parse.
  auto format = format_name == "auto"
                    ? std::optional(::isatty(STDERR_FILENO) ? log::Format::Text : log::Format::Json)
                    : log::format_from_string(format_name);
  if (!format) throw std::invalid_argument("log-format: expected text, json or auto");
  c.log_format = *format;
  if (vm.count("port-file")) c.port_file = vm["port-file"].as<std::string>();
  c.sqlite_path = vm.count("sqlite-path")
                      ? std::filesystem::path(vm["sqlite-path"].as<std::string>())
                      : c.state_dir / "blade.db";
  const std::string mode = vm["exec-mode"].as<std::string>();
  if (mode != "inprocess" && mode != "external")
    throw std::invalid_argument("exec-mode: expected inprocess or external");
  c.exec_external = mode == "external";
  if (vm.count("chaosblade-home")) c.chaosblade_home = vm["chaosblade-home"].as<std::string>();
  c.keep_faults_on_exit = vm["keep-faults-on-exit"].as<bool>();
  c.workers = vm["workers"].as<int>();
  if (c.workers < 1 || c.workers > 64) throw std::invalid_argument("workers: expected 1..64");
  if (vm.count("tls-cert")) c.tls_cert = vm["tls-cert"].as<std::string>();
  if (vm.count("tls-key")) c.tls_key = vm["tls-key"].as<std::string>();
  if (c.tls_cert.empty() != c.tls_key.empty())
    throw std::invalid_argument("tls-cert, tls-key: give both or neither");
  c.rate_limit = in_range<double>(vm, "rate-limit", 0, 1e9);
  c.max_active = in_range<std::int64_t>(vm, "max-active", 0, 1000000);
  c.read_timeout = in_range(vm, "read-timeout", 1, 3600);
  c.write_timeout = in_range(vm, "write-timeout", 1, 3600);
  c.keep_alive_timeout = in_range(vm, "keep-alive-timeout", 1, 3600);
  c.http_threads = in_range(vm, "http-threads", 2, 1024);
  c.max_connections = in_range(vm, "max-connections", 8, 65536);
  c.max_connections_per_address = in_range(vm, "max-connections-per-address", 1, 65536);
  if (c.max_connections_per_address > c.max_connections)
    throw std::invalid_argument(
        "max-connections-per-address: must not be above max-connections");
  c.max_event_streams = in_range(vm, "max-event-streams", 0, 1024);
  c.sync_timeout = in_range(vm, "sync-timeout", 1, 3600);
  if (c.max_event_streams >= c.http_threads)
    throw std::invalid_argument(
        "max-event-streams: must be below http-threads, or streams could take every thread");
  c.max_config_streams = in_range(vm, "max-config-streams", 0, 1024);
  c.config_stream_keepalive = in_range<double>(vm, "config-stream-keepalive", 0.05, 3600);
  (void)c.all_tokens();  // duplicate names or secrets are a start-up error
  return c;
}

// check-plugin's `--config FILE.yaml` (or --config=FILE.yaml): removed from
// `args`; the file's plugins: sections go into inv.config.plugin_configs so
// the plugin's own section is validated as bladed would.
void take_check_config(std::vector<std::string> &args, Invocation &inv) {
  auto is_config = [](const std::string &a) { return a == "--config" || a.rfind("--config=", 0) == 0; };
  auto it = std::find_if(args.begin() + 1, args.end(), is_config);
  if (it == args.end()) return;
  auto last = it + 1;
  std::string file = it->substr(std::min<std::size_t>(it->size(), 9));
  if (*it == "--config") {
    if (last == args.end()) throw std::invalid_argument("check-plugin: --config needs FILE.yaml");
    file = *last++;
  }
  args.erase(it, last);
  if (std::find_if(args.begin() + 1, args.end(), is_config) != args.end())
    throw std::invalid_argument("check-plugin: --config given twice");
  inv.config.plugin_configs = read_plugin_configs(file);
  inv.check_config_file = file;
}

}  // namespace

std::map<std::string, std::string> read_plugin_configs(const std::string &file) {
  Config defaults;
  std::vector<ApiToken> tokens;
  std::map<std::string, std::string> plugin_configs;
  (void)parse_config_file(file, options_description(defaults), tokens, plugin_configs);
  return plugin_configs;
}

std::vector<ApiToken> Config::all_tokens() const {
  std::vector<ApiToken> all = tokens;
  if (!token.empty())
    all.push_back(ApiToken{"default", token, Role::Admin, std::nullopt, std::nullopt});
  TokenTable check(all);  // throws for a duplicate name or secret
  return all;
}

bool is_loopback(const std::string &address) {
  in_addr v4{};
  if (inet_pton(AF_INET, address.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  return address == "::1";
}

Invocation parse_invocation(int argc, const char *const *argv) {
  Invocation inv;
  Config defaults;
  po::options_description desc = options_description(defaults);
  std::ostringstream help;
  help << "Usage: bladed [options]                 serve the API\n"
       << "       bladed recover [options]         roll back what the last run left active, then "
          "exit\n"
       << "       bladed check-plugin FILE.so      load one plugin, print its record as JSON\n"
       << "                 [--config FILE.yaml]   with its plugins: section of that file\n\n"
       << desc
       << "\nTokens with roles and expiry (config file only; BLADE_API_TOKEN adds an admin token\n"
          "named 'default'):\n"
          "  tokens:\n"
          "    - {name: ci, token-file: /etc/blade/ci.token, role: admin}\n"
          "    - {name: dashboard, token: \"...\", role: viewer, expires: 2027-01-31T00:00:00Z,\n"
          "       rate-limit: 5}\n"
          "  admin may do everything; viewer may only read. Audit and logs name the token, never\n"
          "  its secret.\n"
          "Plugin configuration (config file only; validated against each plugin's schema):\n"
          "  plugins:\n"
          "    <plugin-name>: {<key>: <value>, ...}\n"
          "Signals: SIGTERM/SIGINT stop (rolling back active faults unless keep-faults-on-exit);\n"
          "SIGHUP reloads plugins (as POST /v1/plugins/reload).\n";
  inv.help_text = help.str();

  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "check-plugin") {
    take_check_config(args, inv);
    if (args.size() != 2) throw std::invalid_argument("check-plugin: expected exactly one FILE.so");
    inv.command = Command::CheckPlugin;
    inv.plugin_file = args[1];
    return inv;
  }

  if (!args.empty() && args[0] == "recover") {
    inv.command = Command::Recover;
    args.erase(args.begin());
  }

  po::variables_map vm;
  std::vector<ApiToken> tokens;
  std::map<std::string, std::string> plugin_configs;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    if (vm.count("help")) {
      inv.command = Command::Help;  // also for `recover --help`
      return inv;
    }
    if (vm.count("version")) {
      inv.command = Command::Version;
      return inv;
    }
    po::store(parse_env(desc), vm);
    std::string config_file;
    if (vm.count("config")) {
      config_file = vm["config"].as<std::string>();
    } else if (const char *env = std::getenv("BLADE_CONFIG")) {
      config_file = env;
    }
    if (!config_file.empty())
      po::store(parse_config_file(config_file, desc, tokens, plugin_configs), vm);
    po::notify(vm);
  } catch (const po::error &e) {
    throw std::invalid_argument(e.what());
  }
  inv.config = to_config(vm, std::move(tokens), std::move(plugin_configs));
  return inv;
}

}  // namespace blade::server
