// The host the inner (os, disk, network) faults see inside the container: a
// minimal blade_host_api whose logs, write-ahead records, destroy reports,
// progress and fault_ended go over the channel to the cri plugin, which
// speaks for them to the real daemon.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <blade/plugin.hpp>

#include "channel.hpp"

namespace blade::cri {

// What one call into the inner faults leaves behind (what blade_call
// points at while it runs).
struct InnerCall {
  Channel *channel = nullptr;  // where its records, reports and progress go
  sdk::Call::Kind kind = sdk::Call::Kind::Other;
  std::optional<std::chrono::steady_clock::time_point> deadline;  // none: no deadline
  std::optional<std::string> result, restore, message, plan;
  blade_call *handle() { return reinterpret_cast<blade_call *>(this); }
};

class InnerHost {
 public:
  // state_dir "/proc/self/fd/4", daemon_pid this process (so a process
  // fault never hits the helper), no protected paths (the daemon's files
  // are not in the container), `config_json` as the faults' config.
  InnerHost(Channel &channel, std::string config_json);
  InnerHost(const InnerHost &) = delete;
  InnerHost &operator=(const InnerHost &) = delete;

  const blade_host_api *api() const { return &api_; }
  blade_host *handle() { return reinterpret_cast<blade_host *>(this); }
  Channel &channel() { return channel_; }
  const blade_host_info *info() const { return &info_; }

 private:
  Channel &channel_;
  std::string config_;
  const char *no_paths_[1] = {nullptr};
  blade_host_info info_{};
  blade_host_api api_{};
};

}  // namespace blade::cri
