// The plugin's side of one helper process (helper_protocol.hpp): spawned
// without a shell, its messages served, its life owned (RAII: destroying
// the session closes the socket, which makes the helper exit, and reaps
// it).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <blade/plugin.hpp>

#include "helper_protocol.hpp"

namespace blade::cri {

struct HelperDone {
  blade_status status = BLADE_STATUS_OK;
  std::string error;
  std::string result_json = "{}";
  std::string restore_json = "{}";
  std::string plan_json = "{}";
};

struct HelperHooks {
  // The inner record to store ahead of a step; throws when it could not be
  // stored (the helper is told, and the step is not taken).
  std::function<void(const std::string &inner_record)> save_restore;
  std::function<void(const std::string &report)> report;
  std::function<void(blade_log_level, const std::string &)> log;
  std::function<void(const std::string &reason)> fault_ended;
  // A long call's progress (percent, note); may be left empty.
  std::function<void(int, const std::string &)> progress;
};

class HelperSession {
 public:
  // Starts `helper_path` with `req`; throws sdk::Error(INTERNAL) when it
  // cannot be started.
  static std::unique_ptr<HelperSession> start(const std::string &helper_path,
                                              const HelperRequest &req, HelperHooks hooks);
  ~HelperSession();
  HelperSession(const HelperSession &) = delete;
  HelperSession &operator=(const HelperSession &) = delete;

  // Serves messages until the helper's done (or its death, reported as
  // INTERNAL with its exit status) or the call's cancellation/deadline
  // (then the helper is killed and Cancelled/DeadlineExceeded returned).
  // Every outcome is returned as a HelperDone (status CANCELLED, TIMEOUT,
  // INTERNAL with `error` saying what happened); nothing is thrown.
  // After a create's done with status OK the session watches the helper
  // on a thread of its own until destroy(): its logs reach hooks.log, and
  // its death (the fault gone with it) hooks.fault_ended.
  HelperDone wait_done(const sdk::Call &call);
  // After a create's done: asks the same helper to destroy and waits.
  HelperDone destroy(const sdk::Call &call);
  int pid() const;
  std::uint64_t start_time() const;  // /proc/<pid>/stat field 22
  bool alive() const;

 private:
  HelperSession() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace blade::cri
