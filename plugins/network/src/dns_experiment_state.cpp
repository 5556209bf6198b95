#include "dns_experiment_state.hpp"

#include <limits.h>
#include <stdlib.h>

namespace blade::network {

DnsExperimentState::DnsExperimentState(const sdk::Host &host)
    : dirs_(plugins::ExperimentDirs::under_state(host, "dns"),
            plugins::ExperimentDirs::under_state(host, "dns-claims")) {}

std::string DnsExperimentState::dir(std::string_view uid) const {
  return dirs_.dir(uid);
}

void DnsExperimentState::claim(std::string_view flag, const std::string &resource,
                               std::string_view uid) {
  dirs_.take(flag, resource, uid);
}

void DnsExperimentState::checkpoint(const sdk::Call &call, std::string_view uid,
                                    const nlohmann::json &record) const {
  dirs_.checkpoint(call, uid, record);
}

nlohmann::json DnsExperimentState::record(const sdk::Request &req) const {
  return dirs_.record(req);
}

void DnsExperimentState::finish(std::string_view uid) {
  dirs_.finish(uid);
}

std::string file_to_undo(const nlohmann::json &record, const std::string &path) {
  if (record.contains("file") && record["file"].is_string()) return record["file"];
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : path;
}

}  // namespace blade::network
