// disk fill: one file, named with the experiment's uid, allocated until the
// filesystem reaches the target; destroy removes it (from the restore
// record alone, so also after a restart).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <blade/plugin.hpp>

#include "target_dir.hpp"
#include "unique_fd.hpp"

namespace blade::disk {

// What a fill request asks for, worked out against the filesystem as it is.
struct FillPlan {
  std::string dir;
  std::string file;
  std::string by;  // the flag that set the target: percent, reserve or size
  std::uint64_t bytes = 0;
  FsUsage before;
  bool retain_handle = false;
};

// Throws sdk::InvalidArgument naming the deciding flag when the target
// cannot or may not be reached (already past it, more than is available,
// below the safety floor without force).
FillPlan plan_fill(const sdk::Request &req);

class DiskFill {
 public:
  sdk::Outcome create(const sdk::Request &req, sdk::Call &call);
  void destroy(const sdk::Request &req);
  std::string dry_run(const sdk::Request &req);

 private:
  // Files kept open for retain-handle, by uid.
  std::map<std::string, UniqueFd> held_;
};

}  // namespace blade::disk
