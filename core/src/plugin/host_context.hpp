// The host side of the C ABI: what blade_host* and blade_call* point to, and
// the host API table handed to every plugin at init.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <blade/plugin.h>

#include "blade/core/plugin/loaded_plugin.hpp"

namespace blade {

// One per plugin instance; blade_host* is a pointer to this.
class HostContext {
 public:
  HostContext(std::string plugin_name, std::string host_version, std::filesystem::path state_dir,
              HostSettings::FaultEnded fault_ended = {},
              std::vector<std::string> protected_paths = {}, std::string config_json = "{}");

  static const blade_host_api *api();
  blade_host *handle() { return reinterpret_cast<blade_host *>(this); }
  static HostContext *from(blade_host *h) { return reinterpret_cast<HostContext *>(h); }

  const std::string &plugin_name() const { return plugin_name_; }
  const blade_host_info *info() const { return &info_; }
  void fault_ended(const std::string &uid, const std::string &reason) const;

 private:
  std::string plugin_name_;
  std::string host_version_;
  std::string state_dir_;
  std::vector<std::string> protected_paths_;
  std::vector<const char *> protected_path_ptrs_;  // into protected_paths_, NULL-terminated
  std::string config_json_;  // host_info.config_json points here for the instance's life
  blade_host_info info_{};
  HostSettings::FaultEnded fault_ended_;
};

// One per call; blade_call* is a pointer to this. Collects the outputs.
struct CallContext {
  const CallOptions *options = nullptr;
  bool in_create = false;   // save_restore is for create only
  bool in_destroy = false;  // RESULT is the destroy's report (ABI 1.4)
  CallOutcome outcome;
  std::vector<std::string> invalid_outputs;  // fields the plugin filled with non-JSON
  // A destroy's report refused as not a JSON object: logged, never a
  // failure of the destroy (the fault may well be gone).
  bool report_refused = false;

  blade_call *handle() { return reinterpret_cast<blade_call *>(this); }
  static CallContext *from(blade_call *c) { return reinterpret_cast<CallContext *>(c); }
};

}  // namespace blade
