// One fault family of the os plugin: what a (target, action) does on create,
// how destroy undoes it from the restore record alone (so it works after a
// daemon restart, and twice), and what a dry run would hit.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>

#include <blade/plugin.hpp>

namespace blade::os {

using sdk::Call;
using sdk::Host;
using sdk::Outcome;
using sdk::Request;

class Fault {
 public:
  virtual ~Fault() = default;
  // Bad input is an sdk::InvalidArgument naming the flag, thrown before
  // anything on the host changes.
  virtual Outcome create(const Request &req, Call &call) = 0;
  // Idempotent: what is already undone (or was never done) is success.
  virtual void destroy(const Request &req, Call &call) = 0;
  // JSON: what create would hit (cores, pids, files), changing nothing.
  virtual std::string plan(const Request &req, Call &call) = 0;
};

// (target, canonical action) -> its fault.
using FaultTable = std::map<std::pair<std::string, std::string>, std::unique_ptr<Fault>>;

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
