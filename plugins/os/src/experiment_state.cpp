#include "experiment_state.hpp"

#include "../../common/path_guard.hpp"
#include "file_backup.hpp"
#include "proc_table.hpp"

namespace blade::os {
namespace {

constexpr std::string_view kPath = "path:";
constexpr std::string_view kPid = "pid:";

std::string pid_resource(pid_t pid) {
  return std::string(kPid) + std::to_string(pid);
}

}  // namespace

std::string entry_path(const std::string &path) {
  const std::string parent = fs::parent_of(path);
  const std::string resolved = plugins::resolved_path(parent).string();
  return (resolved == "/" ? "" : resolved) + "/" + fs::base_of(path);
}

ExperimentState::ExperimentState(const Host &host)
    : host_(host),
      dirs_(plugins::ExperimentDirs::under_state(host, "backups"),
            plugins::ExperimentDirs::under_state(host, "claims")) {}

std::string ExperimentState::dir(std::string_view uid) const {
  return dirs_.dir(uid);
}

void ExperimentState::checkpoint(const Call &call, std::string_view uid,
                                 const nlohmann::json &record) const {
  dirs_.checkpoint(call, uid, record);
}

nlohmann::json ExperimentState::record(const Request &req) const {
  return dirs_.record(req);
}

void ExperimentState::refuse_if_path_held(std::string_view flag, const std::string &path,
                                          std::string_view uid) const {
  const std::string mine = entry_path(path);
  auto nested = [&](const std::string &other) {
    if (!other.starts_with(kPath)) return false;
    const std::filesystem::path theirs = other.substr(kPath.size());
    return plugins::path_within(mine, theirs) || plugins::path_within(theirs, mine);
  };
  if (auto c = dirs_.conflict(uid, nested, process_gone)) {
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
  dirs_.take(flag, std::string(kPath) + entry_path(path), uid);
}

bool ExperimentState::path_held_by_other(const std::string &path, std::string_view uid) const {
  auto owner = dirs_.claims().owner_of(std::string(kPath) + entry_path(path));
  return owner && *owner != uid;
}

void ExperimentState::refuse_if_pid_held(pid_t pid, std::uint64_t, std::string_view uid) const {
  const std::string resource = pid_resource(pid);
  auto same = [&](const std::string &other) { return other == resource; };
  if (auto c = dirs_.conflict(uid, same, process_gone))
    throw sdk::AlreadyExists("process: pid " + std::to_string(pid) +
                             " is already stopped by active experiment " + c->uid +
                             "; destroy it first");
}

void ExperimentState::claim_pid(pid_t pid, std::uint64_t start_time, std::string_view uid) {
  refuse_if_pid_held(pid, start_time, uid);
  const std::string resource = pid_resource(pid);
  dirs_.take(
      "process", resource, uid, nlohmann::json{{"start_time", start_time}},
      [&](const std::string &other) { return other == resource; }, process_gone);
}

bool ExperimentState::pid_held_by_other(pid_t pid, std::uint64_t, std::string_view uid) const {
  auto owner = dirs_.claims().owner_of(pid_resource(pid));
  return owner && *owner != uid;
}

void ExperimentState::claim_exclusive(std::string_view flag, const std::string &resource,
                                      std::string_view uid) {
  dirs_.take(flag, resource, uid);
}

void ExperimentState::finish(std::string_view uid) {
  dirs_.finish(uid);
}

bool ExperimentState::process_gone(const plugins::Claim &c) {
  if (!c.resource.starts_with(kPid) || !c.note.is_object() || !c.note.contains("start_time"))
    return false;
  const pid_t pid = std::stoi(c.resource.substr(kPid.size()));
  return !proc::same_process(proc::start_time_of(pid), c.note["start_time"].get<std::uint64_t>());
}

}  // namespace blade::os
