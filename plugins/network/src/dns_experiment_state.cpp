#include "dns_experiment_state.hpp"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>

#include "../../common/write_ahead.hpp"

namespace blade::network {

DnsExperimentState::DnsExperimentState(const sdk::Host &host)
    : state_(host.state_dir()), claims_(state_ + "/dns-claims") {}

std::string DnsExperimentState::dir(std::string_view uid) const {
  return state_ + "/dns/" + std::string(uid);
}

void DnsExperimentState::claim(std::string_view flag, const std::string &resource,
                               std::string_view uid) {
  claims_.take(
      flag, resource, uid, nlohmann::json::object(),
      [&](const std::string &other) { return other == resource; },
      [this](const plugins::Claim &c) {
        struct stat st {};
        return ::lstat(dir(c.uid).c_str(), &st) != 0;
      });
}

void DnsExperimentState::checkpoint(const sdk::Call &call, std::string_view uid,
                                    const nlohmann::json &record) const {
  plugins::save_ahead(call, dir(uid), record);
}

nlohmann::json DnsExperimentState::record(const sdk::Request &req) const {
  return plugins::record_for_destroy(req, dir(req.uid()));
}

void DnsExperimentState::finish(std::string_view uid) {
  claims_.release_all(uid);
  const std::string d = dir(uid);
  std::error_code ec;
  if (!std::filesystem::exists(d, ec)) return;
  std::filesystem::remove_all(d, ec);
  if (ec) throw sdk::FailedPrecondition("cannot remove " + d + ": " + ec.message());
  plugins::sync_dir(plugins::directory_of(d));
}

std::string file_to_undo(const nlohmann::json &record, const std::string &path) {
  if (record.contains("file") && record["file"].is_string()) return record["file"];
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : path;
}

}  // namespace blade::network
