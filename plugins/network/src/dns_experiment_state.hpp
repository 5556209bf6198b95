// What the dns faults keep per experiment under the plugin's state dir:
//  - dns/<uid>/record.json: the local copy of the write-ahead record, so a
//    destroy finds what was done from the uid alone;
//  - dns-claims/: which experiment owns which domain (dns) or the resolver
//    configuration (dns_down), so a second fault on it is refused (409).
// Both are plugins::ExperimentDirs' (a claim whose owner's dir is gone is
// stale); what is the dns faults' own is file_to_undo below.
#pragma once

#include <string>
#include <string_view>

#include <blade/plugin.hpp>
#include <nlohmann/json.hpp>

#include "../../common/experiment_dirs.hpp"

namespace blade::network {

class DnsExperimentState {
 public:
  explicit DnsExperimentState(const sdk::Host &host);

  std::string dir(std::string_view uid) const;
  // Takes `resource` for `uid`, or AlreadyExists "<flag>: <what> is already
  // the target of active experiment <owner>; destroy it first".
  void claim(std::string_view flag, const std::string &resource, std::string_view uid);
  // Saves `record` ahead of a step (local copy, then the host's).
  void checkpoint(const sdk::Call &call, std::string_view uid, const nlohmann::json &record) const;
  // The record destroy works from (local copy, host's, or an empty object).
  nlohmann::json record(const sdk::Request &req) const;
  // The end of a destroy or a failed create: claims released, dir removed.
  void finish(std::string_view uid);

 private:
  plugins::ExperimentDirs dirs_;
};

// The file a destroy undoes its edits in: the one its record names (the
// real file, resolved at create), else the file `path` leads to now (a
// destroy with no record: a crash before the first), else `path` itself.
std::string file_to_undo(const nlohmann::json &record, const std::string &path);

}  // namespace blade::network
