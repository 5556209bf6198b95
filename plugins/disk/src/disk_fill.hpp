// disk fill: one file, named with the experiment's uid, allocated until the
// filesystem reaches the target; destroy removes it (from the restore
// record, written ahead of the file, or from the uid-derived name when a
// crash came before any record: so also after a restart).
#pragma once

#include <map>
#include <string>

#include <blade/fault_router.hpp>
#include <blade/plugin.hpp>

#include "target_dir.hpp"

namespace blade::disk {

class DiskFill : public sdk::Fault {
 public:
  explicit DiskFill(sdk::Host host);

  sdk::Outcome create(const sdk::Request &req, sdk::Call &call) override;
  void destroy(const sdk::Request &req, sdk::Call &call) override;
  std::string dry_run(const sdk::Request &req, sdk::Call &call) override;

 private:
  sdk::Host host_;
  // Files kept open for retain-handle, by uid.
  std::map<std::string, UniqueFd> held_;
};

}  // namespace blade::disk
