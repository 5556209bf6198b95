#include "settings.hpp"

#include <cstdlib>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "build_info.hpp"
#include "cli_error.hpp"

namespace blade::cli {
namespace {

namespace fs = std::filesystem;

std::optional<std::string> env(const char *name) {
  const char *v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

// $XDG_CONFIG_HOME/blade/config.yaml, else ~/.config/blade/config.yaml.
fs::path default_config_file() {
  if (auto xdg = env("XDG_CONFIG_HOME")) return fs::path(*xdg) / "blade" / "config.yaml";
  if (auto home = env("HOME")) return fs::path(*home) / ".config" / "blade" / "config.yaml";
  return {};
}

YAML::Node load_config(const fs::path &file, bool named) {
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    if (named) throw UsageError(fmt::format("config file {}: no such file", file.string()));
    return {};
  }
  try {
    YAML::Node node = YAML::LoadFile(file.string());
    if (node.IsNull()) return {};
    if (!node.IsMap())
      throw UsageError(fmt::format("config file {}: not a mapping", file.string()));
    return node;
  } catch (const YAML::Exception &e) {
    throw UsageError(fmt::format("config file {}: {}", file.string(), e.what()));
  }
}

std::optional<std::string> config_text(const YAML::Node &config, const char *key,
                                       const fs::path &file) {
  if (!config || !config[key]) return std::nullopt;
  if (!config[key].IsScalar())
    throw UsageError(fmt::format("config file {}: {} must be a string", file.string(), key));
  return config[key].as<std::string>();
}

}  // namespace

OutputMode parse_output_mode(const std::string &name) {
  if (name == "table") return OutputMode::Table;
  if (name == "json") return OutputMode::Json;
  if (name == "plain") return OutputMode::Plain;
  if (name == "chaosblade") return OutputMode::Chaosblade;
  throw UsageError(
      fmt::format("--output: '{}' is not one of table, json, plain, chaosblade", name));
}

Settings resolve_settings(const GlobalOptions &o, bool stdout_is_terminal) {
  Settings s;
  auto named = o.config ? o.config : env("BLADE_CONFIG");
  s.config_file = named ? fs::path(*named) : default_config_file();
  YAML::Node config;
  if (!s.config_file.empty()) config = load_config(s.config_file, named.has_value());
  auto pick = [&](const std::optional<std::string> &flag, const char *env_name,
                  const char *key) -> std::optional<std::string> {
    if (flag) return flag;
    if (auto e = env_name ? env(env_name) : std::nullopt) return e;
    return config_text(config, key, s.config_file);
  };

  if (auto v = pick(o.endpoint, "BLADE_ENDPOINT", "endpoint")) s.endpoint = *v;
  if (s.endpoint.find("://") == std::string::npos) s.endpoint = "http://" + s.endpoint;
  if (s.endpoint.rfind("http://", 0) != 0 && s.endpoint.rfind("https://", 0) != 0)
    throw UsageError(
        fmt::format("endpoint '{}': use http://HOST:PORT or https://HOST:PORT", s.endpoint));
  while (s.endpoint.size() > 8 && s.endpoint.back() == '/')
    s.endpoint.pop_back();
  if (auto v = pick(o.token, "BLADE_API_TOKEN", "token")) s.token = *v;
  if (auto v = pick(o.ca_cert, "BLADE_CA_CERT", "ca-cert")) s.ca_cert = *v;
  s.insecure = o.insecure;
  if (!s.insecure) {
    auto v = pick(std::nullopt, "BLADE_INSECURE", "insecure");
    s.insecure = v && (*v == "true" || *v == "1" || *v == "yes");
  }
  // bladed reads BLADE_PLUGIN_DIR too (a colon-separated list: the first
  // dir is where new plugins go), so both agree on where plugins are.
  if (auto v = pick(std::nullopt, "BLADE_PLUGIN_DIR", "plugin-dir")) {
    s.plugin_dir = v->substr(0, v->find(':'));
  } else {
    s.plugin_dir = BLADE_PLUGIN_INSTALL_DIR;
  }
  auto output = pick(o.output, "BLADE_OUTPUT", "output");
  s.output = output ? parse_output_mode(*output)
                    : (stdout_is_terminal ? OutputMode::Table : OutputMode::Plain);
  return s;
}

}  // namespace blade::cli
