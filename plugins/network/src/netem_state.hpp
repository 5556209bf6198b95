// What the netem family keeps under the plugin's state dir:
//  - netem/experiments/<uid>/record.json: the local copy of the
//    write-ahead restore record, so destroy works from the uid alone;
//  - netem/claims/: which experiment owns which interface, so a second
//    fault on one interface is refused (409) instead of stacked.
// A claim's owner is gone (and the claim taken over) once the owner's
// experiment dir is: destroy releases the claim, then removes the dir.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <blade/plugin.hpp>
#include <nlohmann/json.hpp>

#include "../../common/experiment_dirs.hpp"
#include "interface_ref.hpp"

namespace blade::network {

class NetemState {
 public:
  explicit NetemState(const sdk::Host &host);

  std::string dir(std::string_view uid) const;
  // Saves `record` ahead of a step (local copy, then the host's).
  void checkpoint(const sdk::Call &call, std::string_view uid, const nlohmann::json &record) const;
  nlohmann::json record(const sdk::Request &req) const;

  // AlreadyExists "interface: <name> (netns .., ifindex ..) is already the
  // target of active experiment <uid>; destroy it first".
  void refuse_if_held(const InterfaceRef &iface, std::string_view uid) const;
  void claim(const InterfaceRef &iface, std::string_view uid);
  // The live owner of the claim on `resource`, if another than `uid`.
  std::optional<std::string> other_owner(const std::string &resource, std::string_view uid) const;

  // The end of a destroy or of a failed create: claims released, dir removed.
  void finish(std::string_view uid);

 private:
  plugins::ExperimentDirs dirs_;
};

}  // namespace blade::network
