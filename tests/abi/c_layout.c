/* Compiled as C99 with -pedantic -Werror: proves blade/plugin.h is plain
 * C99, and reports the layout a C compiler gives its structs so the C++ test
 * can check both languages agree. */
#include <blade/plugin.h>

#include "c_layout.h"

#define ENTRY(type, field) offsetof(type, field)

size_t blade_abi_c_layout(size_t *out, size_t cap) {
  size_t values[] = {
      sizeof(blade_host_info),
      ENTRY(blade_host_info, host_version),
      ENTRY(blade_host_info, state_dir),
      ENTRY(blade_host_info, daemon_pid),
      ENTRY(blade_host_info, protected_paths),
      sizeof(blade_host_api),
      ENTRY(blade_host_api, log),
      ENTRY(blade_host_api, set_output),
      ENTRY(blade_host_api, progress),
      ENTRY(blade_host_api, fault_ended),
      ENTRY(blade_host_api, save_restore),
      sizeof(blade_request),
      ENTRY(blade_request, flag_count),
      ENTRY(blade_request, uid),
      ENTRY(blade_request, flag_names),
      ENTRY(blade_request, restore_json),
      sizeof(blade_plugin_descriptor),
      ENTRY(blade_plugin_descriptor, abi_minor),
      ENTRY(blade_plugin_descriptor, spec_yaml),
      ENTRY(blade_plugin_descriptor, capabilities),
      ENTRY(blade_plugin_descriptor, init),
      ENTRY(blade_plugin_descriptor, dry_run),
      sizeof(blade_status),
  };
  size_t n = sizeof values / sizeof values[0];
  size_t i;
  for (i = 0; i < n && i < cap; ++i) out[i] = values[i];
  return n;
}
