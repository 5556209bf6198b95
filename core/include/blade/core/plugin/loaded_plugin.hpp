// A plugin that passed every check: its library stays open and its instance
// initialised for as long as this object lives. Calls go through the C ABI.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "blade/core/spec/flag_validation.hpp"
#include "blade/core/spec/spec.hpp"

struct blade_plugin_descriptor;

namespace blade {

class HostContext;
class LiveCounters;
class PluginLibrary;
class TopicHub;
struct PluginConfig;

// One request as the plugin sees it; flags already validated.
struct PluginRequest {
  std::string uid;
  std::string scope = "host";
  std::string target;
  std::string action;  // canonical
  FlagValues flags;
  std::optional<std::string> restore_json;  // destroy only
};

struct CallOptions {
  std::optional<std::chrono::steady_clock::time_point> deadline;
  const std::atomic<bool> *cancel = nullptr;  // set => the call should stop
  std::function<void(int percent, const std::string &note)> on_progress;
  // create only: makes a write-ahead restore record durable (host API
  // save_restore, ABI 1.2). Throws blade::Error when it cannot; unset (no
  // store behind the call), the record is kept with the outcome only.
  std::function<void(const std::string &restore_json)> save_restore;
};

// The plugin's answer, copied out of the call.
struct CallOutcome {
  int status = 0;       // a blade_status; anything unknown reads as INTERNAL
  std::string message;  // why, when status != OK
  std::string result_json;
  std::string restore_json;
  std::string plan_json;
  bool ok() const { return status == 0; }
};

// "OK", "INVALID_ARGUMENT", ... for a blade_status value (INTERNAL if unknown).
std::string_view plugin_status_name(int status);

// Where a plugin lives and what the host tells it about itself.
struct HostSettings {
  using FaultEnded = std::function<void(const std::string &plugin, const std::string &uid,
                                        const std::string &reason)>;
  HostSettings(std::string version = {}, std::filesystem::path root = {}, FaultEnded ended = {})
      : host_version(std::move(version)),
        state_root(std::move(root)),
        fault_ended(std::move(ended)) {}

  std::string host_version;
  std::filesystem::path state_root;  // each plugin gets <state_root>/<name>
  // Absolute paths no fault may touch (the database and its WAL/SHM files,
  // the state and plugin dirs); told to plugins through host_info.
  std::vector<std::string> protected_paths;
  // A plugin reports that experiment `uid`'s fault ended on its own (host
  // API fault_ended, ABI 1.1). Called on the plugin's thread: must not block.
  FaultEnded fault_ended;
  // Each plugin's section of bladed's config file (`plugins: <name>: {...}`)
  // as JSON object text, by plugin name; validated when the plugin loads
  // against the schema it declares. Read once at start: a reload uses these.
  std::map<std::string, std::string> plugin_configs;
  // The documents plugins may follow (host API subscribe, ABI 1.5), e.g.
  // "http.rules"; null: every subscribe answers 0 (no such topic).
  TopicHub *topics = nullptr;
  // Where plugins' live counters go (host API report_counters, ABI 1.5);
  // null: reports are checked, then dropped. Both must outlive the plugins.
  LiveCounters *counters = nullptr;
};

// Device, inode, size and modification time of a file ("" if it cannot be
// read): changes when the file is replaced or rewritten.
std::string file_identity(const std::filesystem::path &file);

class LoadedPlugin {
 public:
  ~LoadedPlugin();
  LoadedPlugin(const LoadedPlugin &) = delete;
  LoadedPlugin &operator=(const LoadedPlugin &) = delete;

  const std::string &name() const { return name_; }
  const std::string &version() const { return version_; }
  const std::filesystem::path &path() const { return path_; }
  // The file as it was when loaded (see file_identity): a reload replaces
  // a plugin whose file has changed since.
  const std::string &file_id() const { return file_id_; }
  std::string abi() const;  // "1.0": the ABI minor the plugin needs
  const std::string &spec_yaml() const { return spec_yaml_; }
  const PluginSpec &spec() const { return spec_; }
  std::uint64_t capabilities() const { return capabilities_; }
  // BLADE_CAP_WRITES_AHEAD (ABI 1.6): create leaves nothing behind before
  // its first save_restore, so nothing need be stored before the call.
  bool writes_ahead() const;
  bool has_dry_run() const;
  // Plugin configuration (ABI 1.3): whether the config file had a section
  // for this plugin, the schema it declares (JSON text, "" when none), and
  // the validated section with defaults that the instance was given.
  bool configured() const { return configured_; }
  const std::string &config_schema() const { return config_schema_; }
  const std::string &config_json() const { return config_json_; }

  CallOutcome create(const PluginRequest &request, const CallOptions &options = {});
  CallOutcome destroy(const PluginRequest &request, const CallOptions &options = {});
  // NOT_SUPPORTED when the plugin has no dry_run.
  CallOutcome dry_run(const PluginRequest &request, const CallOptions &options = {});

 private:
  friend std::shared_ptr<LoadedPlugin> make_loaded_plugin(std::unique_ptr<PluginLibrary>,
                                                          PluginSpec, const HostSettings &,
                                                          PluginConfig);
  LoadedPlugin() = default;

  enum class Op { Create, Destroy, DryRun };
  CallOutcome call(Op op, const PluginRequest &request, const CallOptions &options);

  // Declaration order is destruction order in reverse: the instance is shut
  // down (in the destructor) before the host context and library go.
  std::unique_ptr<PluginLibrary> library_;
  std::unique_ptr<HostContext> host_;
  const blade_plugin_descriptor *descriptor_ = nullptr;
  void *instance_ = nullptr;  // blade_instance*
  std::string name_;
  std::string version_;
  std::filesystem::path path_;
  std::string file_id_;
  std::string spec_yaml_;
  PluginSpec spec_;
  std::uint64_t capabilities_ = 0;
  bool configured_ = false;
  std::string config_schema_;
  std::string config_json_;
  std::mutex call_mutex_;  // serialises calls unless the plugin allows overlap
};

}  // namespace blade
