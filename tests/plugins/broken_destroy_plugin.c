/*
 * A deliberately wrong plugin in C99 (blade/plugin.h only), for
 * `bladed check-plugin --exercise`: each build breaks one rule of the ABI
 * the exercise must catch.
 *
 * `<target> mark --name N`: create writes <state_dir>/<uid>.mark (the
 * fault), and saves a restore record ahead naming it; destroy removes the
 * file named by the record.
 *
 * Build switches:
 *   BD_NAME, BD_TARGET   plugin and target names
 *   (default)            destroy is NOT idempotent: it answers NOT_FOUND
 *                        when the file is already gone (the second destroy)
 *   BD_BAD_RESULT        create sets a RESULT that is not JSON; destroy is
 *                        idempotent
 *   BD_HANG_CREATE       create never returns and ignores cancellation
 */
/* nanosleep and struct timespec under -std=c99 */
#define _POSIX_C_SOURCE 200809L

#include <blade/plugin.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef BD_NAME
#define BD_NAME "broken-destroy"
#endif
#ifndef BD_TARGET
#define BD_TARGET "brokendestroy"
#endif

static const char spec_yaml[] =
    "version: v1\n"
    "kind: plugin\n"
    "items:\n"
    "- target: " BD_TARGET "\n"
    "  shortDesc: A plugin that breaks the ABI on purpose (tests)\n"
    "  scope: host\n"
    "  actions:\n"
    "  - action: mark\n"
    "    shortDesc: write a file in the plugin's state dir\n"
    "    flags:\n"
    "    - name: name\n"
    "      desc: a word written into the file\n"
    "      default: mark\n";

struct blade_instance {
  const blade_host_api *api;
  blade_host *host;
};

static const char *flag(const blade_request *req, const char *name) {
  uint32_t i;
  for (i = 0; i < req->flag_count; ++i)
    if (strcmp(req->flag_names[i], name) == 0) return req->flag_values[i];
  return NULL;
}

static void say(const blade_host_api *api, blade_call *call, blade_output_field field,
                const char *text) {
  api->set_output(call, field, text, strlen(text));
}

/* <state_dir>/<uid>.mark; the uid is 16 hex characters, checked here. */
static int mark_path(const blade_instance *self, const char *uid, char *out, size_t size) {
  const blade_host_info *info = self->api->host_info(self->host);
  size_t i, n = strlen(uid);
  if (n != 16) return -1;
  for (i = 0; i < n; ++i)
    if (!strchr("0123456789abcdef", uid[i])) return -1;
  return snprintf(out, size, "%s/%s.mark", info->state_dir, uid) < (int)size ? 0 : -1;
}

static blade_status bd_init(const blade_host_api *api, blade_host *host, blade_call *call,
                            blade_instance **out) {
  blade_instance *self;
  *out = NULL;
  if (!BLADE_HAS_FUNC(api, save_restore)) {
    say(api, call, BLADE_OUTPUT_MESSAGE, "host has no save_restore (ABI 1.2 needed)");
    return BLADE_STATUS_NOT_SUPPORTED;
  }
  self = (blade_instance *)calloc(1, sizeof *self);
  if (!self) return BLADE_STATUS_INTERNAL;
  self->api = api;
  self->host = host;
  *out = self;
  return BLADE_STATUS_OK;
}

static void bd_shutdown(blade_instance *self) {
  free(self);
}

static blade_status bd_dry_run(blade_instance *self, const blade_request *req, blade_call *call) {
  char path[4096], plan[4200];
  if (mark_path(self, req->uid, path, sizeof path) != 0) return BLADE_STATUS_INVALID_ARGUMENT;
  snprintf(plan, sizeof plan, "{\"would_write\":\"%s\"}", path);
  say(self->api, call, BLADE_OUTPUT_PLAN, plan);
  return BLADE_STATUS_OK;
}

static blade_status bd_create(blade_instance *self, const blade_request *req, blade_call *call) {
  char path[4096], record[4200];
  FILE *f;
  blade_status st;
  if (mark_path(self, req->uid, path, sizeof path) != 0) {
    say(self->api, call, BLADE_OUTPUT_MESSAGE, "uid: not 16 hex characters");
    return BLADE_STATUS_INVALID_ARGUMENT;
  }
  snprintf(record, sizeof record, "{\"path\":\"%s\"}", path);
  /* Written ahead: destroy can undo the file even if create never returns. */
  st = self->api->save_restore(call, record, strlen(record));
  if (st != BLADE_STATUS_OK) return st;
  f = fopen(path, "w");
  if (!f) {
    say(self->api, call, BLADE_OUTPUT_MESSAGE, strerror(errno));
    return BLADE_STATUS_INTERNAL;
  }
  fprintf(f, "%s\n", flag(req, "name") ? flag(req, "name") : "");
  fclose(f);
#if defined(BD_HANG_CREATE)
  for (;;) {
    struct timespec pause = {1, 0};
    nanosleep(&pause, NULL); /* never polls is_cancelled: hung on purpose */
  }
#endif
#if defined(BD_BAD_RESULT)
  say(self->api, call, BLADE_OUTPUT_RESULT, "created, not JSON");
#else
  say(self->api, call, BLADE_OUTPUT_RESULT, "{\"marked\":true}");
#endif
  say(self->api, call, BLADE_OUTPUT_RESTORE, record);
  return BLADE_STATUS_OK;
}

static blade_status bd_destroy(blade_instance *self, const blade_request *req, blade_call *call) {
  char path[4096];
  int err;
  /* The record's path is ours to rebuild from the uid; the record only
   * tells destroy that create got as far as saving it. */
  if (!req->restore_json) return BLADE_STATUS_OK;
  if (mark_path(self, req->uid, path, sizeof path) != 0) return BLADE_STATUS_INVALID_ARGUMENT;
  if (unlink(path) == 0) return BLADE_STATUS_OK;
  err = errno;
#if defined(BD_BAD_RESULT) || defined(BD_HANG_CREATE)
  if (err == ENOENT) return BLADE_STATUS_OK;
#endif
  /* The bug under test: "already gone" is reported as an error. */
  say(self->api, call, BLADE_OUTPUT_MESSAGE, err == ENOENT ? "mark file not found" : strerror(err));
  return err == ENOENT ? BLADE_STATUS_NOT_FOUND : BLADE_STATUS_INTERNAL;
}

static const blade_plugin_descriptor descriptor = {
    BLADE_PLUGIN_DESCRIPTOR_INIT(BD_NAME, "1.0.0", spec_yaml, 2),
    .capabilities = BLADE_CAP_DRY_RUN,
    .init = bd_init,
    .shutdown = bd_shutdown,
    .create = bd_create,
    .destroy = bd_destroy,
    .dry_run = bd_dry_run,
};

BLADE_PLUGIN_EXPORT const blade_plugin_descriptor *BLADE_PLUGIN_ENTRY(void) {
  return &descriptor;
}
