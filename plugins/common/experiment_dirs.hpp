// Where a fault family keeps its experiments: one dir per experiment
// (<parent>/<uid>, holding the local copy of its write-ahead record and
// whatever backups the family makes) and one claims dir (which experiment
// owns which resource, so a second fault on it is refused with 409).
//
// A claim's owner is gone, and the claim taken over, once the owner's dir is
// gone: finish() releases the claims first and removes the dir second, so
// only a destroy that died between the two leaves such a claim. A family
// with more ways for an owner to be gone (a stopped process that exited, a
// daemon that is no more) passes them as `also_gone`; the dir rule always
// holds.
//
// Both paths are given by the family: they are on disk, and an upgraded
// daemon must find what the one before it wrote. Header only, shared by the
// plugins of this repository.
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <blade/plugin.hpp>
#include <nlohmann/json.hpp>

#include "durable_file.hpp"
#include "resource_claims.hpp"
#include "write_ahead.hpp"

namespace blade::plugins {

class ExperimentDirs {
 public:
  // `parent`: where the experiments' dirs are (empty: the daemon gave no
  // state dir, and dir() refuses). `claims_dir`: where the claims are
  // (empty: the family takes none).
  // `survives`: what the record and claims must outlive (durable_file.hpp);
  // Survives::ProcessCrash skips their fsyncs, for a family whose effect
  // dies with the kernel anyway (a qdisc), so a power cut leaves nothing to
  // undo.
  ExperimentDirs(std::string parent, std::string claims_dir,
                 Survives survives = Survives::PowerCut)
      : parent_(std::move(parent)), claims_(std::move(claims_dir), survives), survives_(survives) {}

  // "<state>/<sub>", or empty when the host gave no state dir: what the
  // constructor takes, so a plugin loaded without one still loads and
  // refuses only when it needs the dir.
  static std::string under_state(const sdk::Host &host, std::string_view sub) {
    const std::string state = host.state_dir();
    return state.empty() ? std::string() : state + "/" + std::string(sub);
  }

  const std::string &parent() const { return parent_; }

  // <parent>/<uid>. The uid comes from the host (a generated word); one
  // that is not a single path component is refused, since finish() removes
  // what this names (an empty uid would name the parent).
  std::string dir(std::string_view uid) const {
    if (parent_.empty()) throw sdk::FailedPrecondition("the daemon gave the plugin no state dir");
    if (uid.empty() || uid == "." || uid == ".." || uid.find('/') != std::string_view::npos ||
        uid.find('\0') != std::string_view::npos)
      throw sdk::FailedPrecondition("experiment uid '" + std::string(uid) +
                                    "' cannot name a state dir");
    return parent_ + "/" + std::string(uid);
  }

  // Saves `record` ahead of a step (local copy, then the host's).
  void checkpoint(const sdk::Call &call, std::string_view uid,
                  const nlohmann::json &record) const {
    save_ahead(call, dir(uid), record, survives_);
  }

  // The record destroy works from (local copy, host's, or an empty object).
  nlohmann::json record(const sdk::Request &req) const {
    return record_for_destroy(req, dir(req.uid()));
  }

  ResourceClaims &claims() { return claims_; }
  const ResourceClaims &claims() const { return claims_; }

  // The standard staleness rule: the owner's dir is gone (lstat, so a
  // symlink put in its place does not keep a claim alive).
  bool owner_gone(const Claim &c) const {
    struct stat st {};
    return ::lstat(dir(c.uid).c_str(), &st) != 0;
  }

  // The live claim of another experiment on a resource `same_resource`
  // says collides, if any.
  template <class Same, class AlsoGone>
  std::optional<Claim> conflict(std::string_view uid, Same same_resource,
                                AlsoGone also_gone) const {
    return claims_.conflict(uid, same_resource,
                            [&](const Claim &c) { return owner_gone(c) || also_gone(c); });
  }
  template <class Same>
  std::optional<Claim> conflict(std::string_view uid, Same same_resource) const {
    return conflict(uid, same_resource, [](const Claim &) { return false; });
  }

  // Takes `resource` for `uid`, or AlreadyExists "<flag>: <what> is already
  // the target of active experiment <owner>; destroy it first". The common
  // case is one exact resource: take(flag, resource, uid).
  template <class Same, class AlsoGone>
  void take(std::string_view flag, const std::string &resource, std::string_view uid,
            const nlohmann::json &note, Same same_resource, AlsoGone also_gone) {
    claims_.take(flag, resource, uid, note, same_resource,
                 [&](const Claim &c) { return owner_gone(c) || also_gone(c); });
  }
  template <class Same>
  void take(std::string_view flag, const std::string &resource, std::string_view uid,
            const nlohmann::json &note, Same same_resource) {
    take(flag, resource, uid, note, same_resource, [](const Claim &) { return false; });
  }
  void take(std::string_view flag, const std::string &resource, std::string_view uid,
            const nlohmann::json &note = nlohmann::json::object()) {
    take(flag, resource, uid, note, [&](const std::string &other) { return other == resource; });
  }

  // The end of a destroy (or of a failed create): the claims released, then
  // the dir removed and its parent synced. Nothing there is success.
  void finish(std::string_view uid) {
    claims_.release_all(uid);
    const std::string d = dir(uid);
    std::error_code ec;
    if (!std::filesystem::exists(std::filesystem::symlink_status(d, ec))) return;
    std::filesystem::remove_all(d, ec);
    if (ec) throw sdk::FailedPrecondition("cannot remove " + d + ": " + ec.message());
    sync_dir(parent_);
  }

 private:
  std::string parent_;
  ResourceClaims claims_;
  Survives survives_;
};

}  // namespace blade::plugins
