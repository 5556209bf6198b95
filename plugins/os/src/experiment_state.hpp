// What the os plugin keeps per experiment under its state dir, shared by
// the fault families with irreversible steps (file, script, process stop):
//  - <state>/backups/<uid>/: the experiment's own dir, holding its backups
//    and the local copy of its write-ahead record (record.json), so destroy
//    finds everything from the uid alone;
//  - <state>/claims/: which experiment owns which file path or pid, so a
//    second fault on the same resource is refused (ALREADY_EXISTS).
// The dirs, records and the "owner's dir gone" rule are
// plugins::ExperimentDirs'; what is the os plugin's own is on top: a path
// claim collides with paths under and above it, and a pid claim is also
// gone once the process it named has exited.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "../../common/experiment_dirs.hpp"
#include "fault.hpp"

namespace blade::os {

class ExperimentState {
 public:
  explicit ExperimentState(const Host &host);

  // <state>/backups/<uid>
  std::string dir(std::string_view uid) const;
  // Saves `record` ahead of a step (local copy, then the host's).
  void checkpoint(const Call &call, std::string_view uid, const nlohmann::json &record) const;
  // The record destroy works from (local copy, host's, or an empty object).
  nlohmann::json record(const Request &req) const;

  // Throws AlreadyExists "<flag>: ..." when another live experiment holds
  // `path`, a path under it, or a dir above it (deleting or moving a dir
  // takes what is inside along).
  void refuse_if_path_held(std::string_view flag, const std::string &path,
                           std::string_view uid) const;
  void claim_path(std::string_view flag, const std::string &path, std::string_view uid);
  // True when another experiment holds exactly `path`: then this one never
  // took its step there, and its destroy must not undo anything there.
  bool path_held_by_other(const std::string &path, std::string_view uid) const;

  void refuse_if_pid_held(pid_t pid, std::uint64_t start_time, std::string_view uid) const;
  void claim_pid(pid_t pid, std::uint64_t start_time, std::string_view uid);
  bool pid_held_by_other(pid_t pid, std::uint64_t start_time, std::string_view uid) const;

  // One whole resource no two experiments share (the wall clock, a systemd
  // unit), named "<kind>:<name>"; AlreadyExists "<flag>: <name> is already
  // the target of active experiment ..." when another live one holds it.
  void claim_exclusive(std::string_view flag, const std::string &resource, std::string_view uid);

  // The end of a destroy (or of a failed create): the experiment's claims
  // released, then its dir removed.
  void finish(std::string_view uid);

  // The end of a failed create: `undo` its steps, then finish(uid). An error
  // of the undo is logged, not thrown: the create's own error is the answer,
  // and the host destroys the experiment from its record once more.
  template <class Undo>
  void roll_back(std::string_view uid, std::string_view what, Undo &&undo) {
    try {
      undo();
      finish(uid);
    } catch (const std::exception &e) {
      host_.warn("experiment " + std::string(uid) + ": undoing a failed " + std::string(what) +
                 ": " + e.what());
    }
  }

 private:
  // The os plugin's addition to the standard staleness rule: a pid claim
  // whose process exited (or whose pid was reused) holds nothing.
  static bool process_gone(const plugins::Claim &c);

  Host host_;
  plugins::ExperimentDirs dirs_;
};

// The path a file fault acts on, as a claim names it: the parent resolved
// (symlinks, "..") and the last name kept, since delete and move act on the
// entry itself, not on what a symlink there points to.
std::string entry_path(const std::string &path);

}  // namespace blade::os
