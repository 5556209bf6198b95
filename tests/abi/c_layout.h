#ifndef BLADE_TEST_C_LAYOUT_H
#define BLADE_TEST_C_LAYOUT_H
#include <stddef.h>

#include <blade/plugin.h>
#ifdef __cplusplus
extern "C" {
#endif
/* Fills out[] with sizes and offsets as the C compiler laid them out, in
 * the order of abi_layout_test.cpp's table; returns how many there are. */
size_t blade_abi_c_layout(size_t *out, size_t cap);
/* A descriptor written in C with BLADE_PLUGIN_DESCRIPTOR_INIT. */
const blade_plugin_descriptor *blade_abi_c_descriptor(void);
/* The C compiler's BLADE_HAS_FUNC / BLADE_HAS_MEMBER verdicts as bits:
 * 1 fault_ended, 2 save_restore (both of `api`), 4 protected_paths,
 * 8 config_json (both of `info`), 16 subscribe, 32 unsubscribe,
 * 64 report_counters (of `api`). */
int blade_abi_c_has(const blade_host_api *api, const blade_host_info *info);
#ifdef __cplusplus
}
#endif
#endif
