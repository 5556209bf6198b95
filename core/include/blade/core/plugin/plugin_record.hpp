// What GET /v1/plugins shows of each plugin file: loaded, or refused and why.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace blade {

struct PluginRecord {
  enum class Status { Loaded, Refused };
  std::string name;  // the descriptor's name, or the file's stem when unknown
  std::string version;
  std::string abi;  // "1.0"
  std::filesystem::path path;
  std::vector<std::string> targets;  // "cpu fullload", ...
  Status status = Status::Refused;
  std::string error;  // why it was refused
  // Plugin configuration: the config file has a section for this plugin;
  // the schema the plugin declares (JSON text; "" when it declares none or
  // was refused before its schema was read).
  bool configured = false;
  std::string config_schema;
};

// A plugin that failed a check; the message says which and why.
class PluginRefused : public std::runtime_error {
 public:
  explicit PluginRefused(const std::string &reason, std::string name = {})
      : std::runtime_error(reason), name_(std::move(name)) {}
  const std::string &name() const { return name_; }

 private:
  std::string name_;
};

}  // namespace blade
