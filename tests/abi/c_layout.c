/* Compiled as C99 with -pedantic -Werror: proves blade/plugin.h is plain
 * C99 (its macros included), and reports the layout a C compiler gives its
 * structs so the C++ test can check both languages agree. */
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
      ENTRY(blade_host_info, config_json),
      sizeof(blade_host_api),
      ENTRY(blade_host_api, log),
      ENTRY(blade_host_api, set_output),
      ENTRY(blade_host_api, progress),
      ENTRY(blade_host_api, fault_ended),
      ENTRY(blade_host_api, save_restore),
      ENTRY(blade_host_api, subscribe),
      ENTRY(blade_host_api, unsubscribe),
      ENTRY(blade_host_api, report_counters),
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
      ENTRY(blade_plugin_descriptor, config_schema),
      sizeof(blade_status),
  };
  size_t n = sizeof values / sizeof values[0];
  size_t i;
  for (i = 0; i < n && i < cap; ++i) out[i] = values[i];
  return n;
}

/* A descriptor as a C plugin writes it, so BLADE_PLUGIN_DESCRIPTOR_INIT is
 * proven to compile as C99; the C++ test reads the fields it filled. */
static blade_status c_create(blade_instance *instance, const blade_request *request,
                             blade_call *call) {
  (void)instance;
  (void)request;
  (void)call;
  return BLADE_STATUS_OK;
}

static const blade_plugin_descriptor c_descriptor = {
    BLADE_PLUGIN_DESCRIPTOR_INIT("c-layout", "1.2.3", "items: []", 2),
    .capabilities = BLADE_CAP_DRY_RUN,
    .create = c_create,
    .dry_run = c_create,
    .config_schema = "{}",
};

const blade_plugin_descriptor *blade_abi_c_descriptor(void) { return &c_descriptor; }

int blade_abi_c_has(const blade_host_api *api, const blade_host_info *info) {
  return (BLADE_HAS_FUNC(api, fault_ended) ? 1 : 0) | (BLADE_HAS_FUNC(api, save_restore) ? 2 : 0) |
         (BLADE_HAS_MEMBER(info, protected_paths) ? 4 : 0) |
         (BLADE_HAS_MEMBER(info, config_json) ? 8 : 0) | (BLADE_HAS_FUNC(api, subscribe) ? 16 : 0) |
         (BLADE_HAS_FUNC(api, unsubscribe) ? 32 : 0) |
         (BLADE_HAS_FUNC(api, report_counters) ? 64 : 0);
}
