// The host side of the C ABI: what blade_host* and blade_call* point to, and
// the host API table handed to every plugin at init.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <blade/plugin.h>

#include "blade/core/plugin/loaded_plugin.hpp"
#include "blade/core/plugin/topic_hub.hpp"

namespace blade {

// One per plugin instance; blade_host* is a pointer to this.
class HostContext {
 public:
  // `settings` gives the host version, fault_ended sink, protected paths,
  // topics and counters sink; the rest is this plugin's own.
  HostContext(std::string plugin_name, const HostSettings &settings,
              std::filesystem::path state_dir, std::string config_json = "{}");
  // Ends what the instance left open (see end_instance).
  ~HostContext();
  HostContext(const HostContext &) = delete;
  HostContext &operator=(const HostContext &) = delete;

  static const blade_host_api *api();
  blade_host *handle() { return reinterpret_cast<blade_host *>(this); }
  static HostContext *from(blade_host *h) { return reinterpret_cast<HostContext *>(h); }

  const std::string &plugin_name() const { return plugin_name_; }
  const blade_host_info *info() const { return &info_; }
  void fault_ended(const std::string &uid, const std::string &reason) const;

  // Host API subscribe/unsubscribe (ABI 1.5). subscribe answers 0 for a
  // topic the hub does not have (or no hub), and for a call from inside a
  // delivery, which would otherwise deadlock the publishing thread.
  std::uint64_t subscribe(const char *topic, blade_topic_fn fn, void *ctx);
  void unsubscribe(std::uint64_t id);
  // Host API report_counters (ABI 1.5): a blade_status.
  blade_status report_counters(const char *uid, std::string_view json);
  // Forgets experiment uid's counters (its destroy returned OK, or its
  // create failed): the fault they counted is gone.
  void drop_counters(const std::string &uid);
  // Once the instance's shutdown returned: ends every subscription it left
  // open and forgets the counters it reported (nothing it ran still counts).
  // Idempotent.
  void end_instance();

 private:
  std::string plugin_name_;
  std::string host_version_;
  std::string state_dir_;
  std::vector<std::string> protected_paths_;
  std::vector<const char *> protected_path_ptrs_;  // into protected_paths_, NULL-terminated
  std::string config_json_;  // host_info.config_json points here for the instance's life
  blade_host_info info_{};
  HostSettings::FaultEnded fault_ended_;
  TopicHub *topics_ = nullptr;
  LiveCounters *counters_ = nullptr;
  // This instance's name in LiveCounters: distinct for every HostContext,
  // so a reloaded plugin's new instance keeps its reports when the old
  // instance's are dropped.
  std::uint64_t owner_id_ = 0;
  std::mutex subscriptions_mutex_;
  std::map<std::uint64_t, TopicHub::Subscription> subscriptions_;  // by id
  std::atomic<std::uint64_t> counters_refused_{0};
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
