// Where blade finds bladed and how it prints: command-line options first,
// then the environment, then the config file, then the defaults.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace blade::cli {

// Chaosblade: ChaosBlade's Response JSON ({"code":200,"success":true,
// "result":...}) around what json prints, so `jq .result` scripts work.
enum class OutputMode { Table, Json, Plain, Chaosblade };

struct Settings {
  std::string endpoint = "http://127.0.0.1:9526";
  std::string token;
  std::filesystem::path ca_cert;  // trust this CA for https endpoints
  bool insecure = false;          // https without certificate verification
  std::filesystem::path plugin_dir;
  OutputMode output = OutputMode::Plain;
  std::filesystem::path config_file;  // the one read, if any
};

// What the global options said; unset ones fall back to env/config.
struct GlobalOptions {
  std::optional<std::string> endpoint;
  std::optional<std::string> token;
  std::optional<std::string> ca_cert;
  bool insecure = false;
  std::optional<std::string> output;
  std::optional<std::string> config;
};

// Throws UsageError for an unknown --output, a config file that is named
// but missing, or one that is not valid YAML.
Settings resolve_settings(const GlobalOptions &options, bool stdout_is_terminal);

OutputMode parse_output_mode(const std::string &name);

}  // namespace blade::cli
