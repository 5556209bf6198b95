// Both disk faults on one router: the disk plugin's and the cri helper's
// (plugins/common/shared_faults.hpp).
#include <memory>

#include "../../common/shared_faults.hpp"
#include "disk_burn.hpp"
#include "disk_fill.hpp"

namespace blade::disk {

void register_disk_faults(sdk::FaultRouter &router, const sdk::Host &host) {
  router.add("disk", "fill", std::make_unique<DiskFill>(host));
  router.add("disk", "burn", std::make_unique<DiskBurn>(host));
}

}  // namespace blade::disk
