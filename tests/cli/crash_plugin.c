/* A plugin file whose entry point crashes: `blade plugin install` must
 * report the crash as a refusal and stay up itself. */
#include <stdlib.h>

__attribute__((visibility("default"))) const void *blade_plugin_entry_v1(void) {
  abort();
}
