// disk burn: daemon threads reading and/or writing blocks in files named
// with the experiment's uid, until destroy stops them (within 1 s) and
// removes the files. The threads die with the daemon; the files do not, so
// destroy from the restore record alone removes them after a restart.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <blade/fault_router.hpp>
#include <blade/plugin.hpp>

namespace blade::disk {

class Burner;

class DiskBurn : public sdk::Fault {
 public:
  explicit DiskBurn(sdk::Host host);
  ~DiskBurn() override;
  DiskBurn(const DiskBurn &) = delete;
  DiskBurn &operator=(const DiskBurn &) = delete;

  sdk::Outcome create(const sdk::Request &req, sdk::Call &call) override;
  void destroy(const sdk::Request &req, sdk::Call &call) override;
  std::string dry_run(const sdk::Request &req, sdk::Call &call) override;

 private:
  sdk::Host host_;
  std::map<std::string, std::unique_ptr<Burner>> burners_;  // by uid
};

}  // namespace blade::disk
