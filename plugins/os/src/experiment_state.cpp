#include "experiment_state.hpp"

#include "../../common/path_guard.hpp"
#include "../../common/write_ahead.hpp"
#include "file_backup.hpp"
#include "proc_table.hpp"

namespace blade::os {
namespace {

constexpr std::string_view kPath = "path:";
constexpr std::string_view kPid = "pid:";

std::string claims_dir(const Host &host) {
  const std::string state = host.state_dir();
  return state.empty() ? std::string() : state + "/claims";
}

std::string pid_resource(pid_t pid) {
  return std::string(kPid) + std::to_string(pid);
}

}  // namespace

std::string entry_path(const std::string &path) {
  const std::string parent = fs::parent_of(path);
  const std::string resolved = plugins::resolved_path(parent).string();
  return (resolved == "/" ? "" : resolved) + "/" + fs::base_of(path);
}

ExperimentState::ExperimentState(const Host &host) : host_(host), claims_(claims_dir(host)) {}

std::string ExperimentState::dir(std::string_view uid) const {
  return fs::backup_dir(host_, uid);
}

void ExperimentState::checkpoint(const Call &call, std::string_view uid,
                                 const nlohmann::json &record) const {
  plugins::save_ahead(call, dir(uid), record);
}

nlohmann::json ExperimentState::record(const Request &req) const {
  return plugins::record_for_destroy(req, dir(req.uid()));
}

void ExperimentState::refuse_if_path_held(std::string_view flag, const std::string &path,
                                          std::string_view uid) const {
  const std::string mine = entry_path(path);
  auto nested = [&](const std::string &other) {
    if (!other.starts_with(kPath)) return false;
    const std::filesystem::path theirs = other.substr(kPath.size());
    return plugins::path_within(mine, theirs) || plugins::path_within(theirs, mine);
  };
  auto c = claims_.conflict(uid, nested, [this](const plugins::Claim &c) { return stale(c); });
  if (c) {
    const std::string what = c->resource.substr(kPath.size());
    throw sdk::AlreadyExists(std::string(flag) + ": " + mine +
                             (what == mine ? "" : " (through " + what + ")") +
                             " is already the target of active experiment " + c->uid +
                             "; destroy it first");
  }
}

void ExperimentState::claim_path(std::string_view flag, const std::string &path,
                                 std::string_view uid) {
  refuse_if_path_held(flag, path, uid);
  const std::string resource = std::string(kPath) + entry_path(path);
  claims_.take(
      flag, resource, uid, nlohmann::json::object(),
      [&](const std::string &other) { return other == resource; },
      [this](const plugins::Claim &c) { return stale(c); });
}

bool ExperimentState::path_held_by_other(const std::string &path, std::string_view uid) const {
  auto owner = claims_.owner_of(std::string(kPath) + entry_path(path));
  return owner && *owner != uid;
}

void ExperimentState::refuse_if_pid_held(pid_t pid, std::uint64_t, std::string_view uid) const {
  const std::string resource = pid_resource(pid);
  auto c = claims_.conflict(
      uid, [&](const std::string &other) { return other == resource; },
      [this](const plugins::Claim &c) { return stale(c); });
  if (c)
    throw sdk::AlreadyExists("process: pid " + std::to_string(pid) +
                             " is already stopped by active experiment " + c->uid +
                             "; destroy it first");
}

void ExperimentState::claim_pid(pid_t pid, std::uint64_t start_time, std::string_view uid) {
  refuse_if_pid_held(pid, start_time, uid);
  const std::string resource = pid_resource(pid);
  claims_.take(
      "process", resource, uid, nlohmann::json{{"start_time", start_time}},
      [&](const std::string &other) { return other == resource; },
      [this](const plugins::Claim &c) { return stale(c); });
}

bool ExperimentState::pid_held_by_other(pid_t pid, std::uint64_t, std::string_view uid) const {
  auto owner = claims_.owner_of(pid_resource(pid));
  return owner && *owner != uid;
}

void ExperimentState::claim_exclusive(std::string_view flag, const std::string &resource,
                                      std::string_view uid) {
  claims_.take(
      flag, resource, uid, nlohmann::json::object(),
      [&](const std::string &other) { return other == resource; },
      [this](const plugins::Claim &c) { return stale(c); });
}

void ExperimentState::finish(std::string_view uid) {
  claims_.release_all(uid);
  const std::string d = dir(uid);
  if (!fs::lstat_at(d)) return;
  fs::remove_tree(d);
  plugins::sync_dir(fs::parent_of(d));
}

bool ExperimentState::stale(const plugins::Claim &c) const {
  if (!fs::lstat_at(dir(c.uid))) return true;  // its destroy got past the undo
  if (c.resource.starts_with(kPid) && c.note.is_object() && c.note.contains("start_time")) {
    const pid_t pid = std::stoi(c.resource.substr(kPid.size()));
    // The stopped process exited: nothing of the owner's is left on it.
    return !proc::same_process(proc::start_time_of(pid), c.note["start_time"].get<std::uint64_t>());
  }
  return false;
}

}  // namespace blade::os
