// One fault family of the os plugin: what a (target, action) does on create,
// how destroy undoes it from the restore record alone (so it works after a
// daemon restart, and twice), and what a dry run would hit.
#pragma once

#include <string>

#include <blade/fault_router.hpp>
#include <blade/plugin.hpp>

namespace blade::os {

using sdk::Call;
using sdk::Host;
using sdk::Outcome;
using sdk::Request;

// An SDK fault whose dry run is required: every os action can say what it
// would hit, so a family that forgets its plan does not compile.
class Fault : public sdk::Fault {
 public:
  // JSON: what create would hit (cores, pids, files), changing nothing.
  virtual std::string plan(const Request &req, Call &call) = 0;
  std::string dry_run(const Request &req, Call &call) final { return plan(req, call); }
};

// (target, canonical action) -> its fault: the SDK's router.
using FaultTable = sdk::FaultRouter;

// Each family adds its actions (one file each).
void register_cpu_faults(FaultTable &table, const Host &host);
void register_mem_faults(FaultTable &table, const Host &host);
void register_process_faults(FaultTable &table, const Host &host);
void register_file_faults(FaultTable &table, const Host &host);
void register_script_faults(FaultTable &table, const Host &host);
void register_strace_faults(FaultTable &table, const Host &host);
void register_time_faults(FaultTable &table, const Host &host);
void register_systemd_faults(FaultTable &table, const Host &host);

}  // namespace blade::os
