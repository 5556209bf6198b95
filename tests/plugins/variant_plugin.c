/*
 * One C source, compiled many times with -D switches into the test plugins
 * that exercise each refusal of the loader, plus well-formed no-op plugins
 * (benchmarks, registry tests). Defaults make a good plugin named VP_NAME
 * serving `VP_TARGET noop`, whose create and destroy change nothing.
 *
 *   VP_NAME, VP_TARGET      strings
 *   VP_ENTRY                entry symbol (default BLADE_PLUGIN_ENTRY)
 *   VP_NO_ENTRY             export no entry symbol at all
 *   VP_ABI_MAJOR/MINOR      what the descriptor claims
 *   VP_SPEC_BAD_YAML        spec is not YAML
 *   VP_SPEC_INVALID         spec is YAML but names an unknown flag type
 *   VP_SPEC_NULL            no spec at all
 *   VP_INIT_FAIL            init reports an error
 *   VP_CAPS_MISMATCH        claims DRY_RUN without a dry_run function
 *   VP_UNDEFINED_SYMBOL     needs a symbol nobody defines (dlopen fails)
 *   VP_CREATE_BAD_JSON      create "succeeds" with a restore record that is not JSON
 *   VP_CREATE_STATUS        create returns this raw status value (e.g. 42)
 *   VP_WRITES_AHEAD         sets BLADE_CAP_WRITES_AHEAD (ABI 1.6): true of a
 *                           create that changes nothing
 *   VP_SAVE_RESTORE         create writes {"step":1} ahead (save_restore, ABI
 *                           1.2) and returns it as its RESTORE, changing nothing
 *   VP_DESTROY_REPORT       destroy reports what it got (ABI 1.4 RESULT in
 *                           destroy): 1 a JSON object, 2 a JSON array (which
 *                           a 1.4 host refuses, the destroy still OK)
 */
#include <blade/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef VP_NAME
#define VP_NAME "variant"
#endif
#ifndef VP_TARGET
#define VP_TARGET "variant"
#endif
#ifndef VP_ENTRY
#define VP_ENTRY BLADE_PLUGIN_ENTRY
#endif
#ifndef VP_ABI_MAJOR
#define VP_ABI_MAJOR BLADE_PLUGIN_ABI_MAJOR
#endif
#ifndef VP_ABI_MINOR
#define VP_ABI_MINOR 0
#endif

#if defined(VP_SPEC_BAD_YAML)
#define VP_SPEC "version: v1\nkind: plugin\nitems: [ {target: x, actions: [\n"
#elif defined(VP_SPEC_INVALID)
#define VP_SPEC                                                               \
  "version: v1\nkind: plugin\nitems:\n- target: " VP_TARGET "\n  actions:\n" \
  "  - action: noop\n    flags:\n    - name: level\n      type: colour\n"
#elif defined(VP_SPEC_NULL)
#define VP_SPEC NULL
#else
#define VP_SPEC                                                                    \
  "version: v1\nkind: plugin\nitems:\n- target: " VP_TARGET "\n"                   \
  "  shortDesc: test target\n  scope: host\n  actions:\n"                          \
  "  - action: noop\n    aliases: [nop]\n    shortDesc: change nothing\n"           \
  "    flags:\n"                                                                   \
  "    - name: percent\n      desc: a bounded integer\n      type: int\n"           \
  "      min: 0\n      max: 100\n      default: \"50\"\n"                           \
  "    - name: mode\n      desc: an enum\n      type: enum\n      values: [a, b]\n" \
  "    - name: force\n      desc: a switch\n      noArgs: true\n"                   \
  "    - name: dir\n      desc: a path\n      type: path\n"                          \
  "  - action: other\n    shortDesc: also nothing\n"
#endif

#ifdef VP_UNDEFINED_SYMBOL
extern int blade_test_symbol_nobody_defines(void);
#endif

struct blade_instance {
  const blade_host_api *api;
};

static blade_status vp_init(const blade_host_api *api, blade_host *host, blade_call *call,
                            blade_instance **out) {
  (void)host;
  *out = NULL;
#ifdef VP_INIT_FAIL
  api->set_output(call, BLADE_OUTPUT_MESSAGE, "device not ready", strlen("device not ready"));
  return BLADE_STATUS_FAILED_PRECONDITION;
#else
  (void)call;
#ifdef VP_UNDEFINED_SYMBOL
  if (blade_test_symbol_nobody_defines()) return BLADE_STATUS_INTERNAL;
#endif
  *out = (blade_instance *)calloc(1, sizeof(blade_instance));
  if (!*out) return BLADE_STATUS_INTERNAL;
  (*out)->api = api;
  return BLADE_STATUS_OK;
#endif
}

static void vp_shutdown(blade_instance *self) { free(self); }

#ifdef VP_DESTROY_REPORT
/* The report names the call, so a test can tell which destroy's is kept
 * (the uid is 16 hex digits: nothing to escape). */
static void vp_report(blade_instance *self, const blade_request *req, blade_call *call,
                      int blocked) {
  char text[256];
#if VP_DESTROY_REPORT == 2
  (void)blocked;
  snprintf(text, sizeof text, "[\"%s\"]", req->uid);
#else
  snprintf(text, sizeof text, "{\"uid\":\"%s\",\"had_restore\":%s,\"blocked\":%s}", req->uid,
           req->restore_json ? "true" : "false", blocked ? "true" : "false");
#endif
  self->api->set_output(call, BLADE_OUTPUT_RESULT, text, strlen(text));
}
#define VP_REPORT(blocked) vp_report(self, req, call, blocked)
#else
#define VP_REPORT(blocked) ((void)0)
#endif

/* With flag dir=D, destroy appends a line to D/destroy-calls (tests count
 * rollbacks) and fails while D/block-destroy exists (tests of retries). */
static blade_status vp_destroy(blade_instance *self, const blade_request *req, blade_call *call) {
  const char *dir = NULL;
  char path[4096];
  FILE *f;
  uint32_t i;
  for (i = 0; i < req->flag_count; ++i)
    if (strcmp(req->flag_names[i], "dir") == 0) dir = req->flag_values[i];
  if (!dir) {
    VP_REPORT(0);
    return BLADE_STATUS_OK;
  }
  snprintf(path, sizeof path, "%s/destroy-calls", dir);
  f = fopen(path, "a");
  if (f) {
    fprintf(f, "%s\n", req->uid);
    fclose(f);
  }
  snprintf(path, sizeof path, "%s/block-destroy", dir);
  f = fopen(path, "r");
  if (f) {
    fclose(f);
    VP_REPORT(1);
    self->api->set_output(call, BLADE_OUTPUT_MESSAGE, "destroy blocked by test", 23);
    return BLADE_STATUS_FAILED_PRECONDITION;
  }
  VP_REPORT(0);
  return BLADE_STATUS_OK;
}

static blade_status vp_create(blade_instance *self, const blade_request *req, blade_call *call) {
#if defined(VP_CREATE_BAD_JSON)
  (void)req;
  self->api->set_output(call, BLADE_OUTPUT_RESTORE, "{not json", 9);
  return BLADE_STATUS_OK;
#elif defined(VP_CREATE_STATUS)
  (void)self;
  (void)req;
  (void)call;
  return (blade_status)VP_CREATE_STATUS;
#elif defined(VP_SAVE_RESTORE)
  static const char record[] = "{\"step\":1}";
  blade_status status;
  (void)req;
  if (!BLADE_HAS_FUNC(self->api, save_restore)) return BLADE_STATUS_FAILED_PRECONDITION;
  status = self->api->save_restore(call, record, strlen(record));
  if (status != BLADE_STATUS_OK) return status;
  self->api->set_output(call, BLADE_OUTPUT_RESTORE, record, strlen(record));
  return BLADE_STATUS_OK;
#else
  (void)self;
  (void)req;
  (void)call;
  return BLADE_STATUS_OK;
#endif
}

static const blade_plugin_descriptor descriptor = {
    sizeof(blade_plugin_descriptor),
    VP_ABI_MAJOR,
    VP_ABI_MINOR,
    VP_NAME,
    "0.0.1",
    VP_SPEC,
#ifdef VP_CAPS_MISMATCH
    BLADE_CAP_DRY_RUN,
#elif defined(VP_WRITES_AHEAD)
    BLADE_CAP_CONCURRENT_CALLS | BLADE_CAP_WRITES_AHEAD,
#else
    BLADE_CAP_CONCURRENT_CALLS,
#endif
    vp_init,
    vp_shutdown,
    vp_create,
    vp_destroy,
    NULL, /* dry_run */
    NULL, /* config_schema: takes no configuration */
};

#ifndef VP_NO_ENTRY
BLADE_PLUGIN_EXPORT const blade_plugin_descriptor *VP_ENTRY(void) { return &descriptor; }
#else
/* Keeps the descriptor referenced so the compiler does not warn. */
const void *vp_unused_descriptor(void) { return &descriptor; }
#endif
