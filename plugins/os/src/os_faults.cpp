// Every os fault family on one router: the os plugin's and the cri
// helper's (plugins/common/shared_faults.hpp).
#include "../../common/shared_faults.hpp"
#include "fault.hpp"

namespace blade::os {

void register_os_faults(sdk::FaultRouter &router, const sdk::Host &host) {
  register_cpu_faults(router, host);
  register_mem_faults(router, host);
  register_process_faults(router, host);
  register_file_faults(router, host);
  register_script_faults(router, host);
  register_strace_faults(router, host);
  register_time_faults(router, host);
  register_systemd_faults(router, host);
}

}  // namespace blade::os
