/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A complete plugin in plain C99, using only blade/plugin.h: it proves the
 * ABI is usable without the C++ layer. `cmarker touch --path P` creates a
 * file holding the experiment's uid; destroy removes it if it still holds
 * that uid. Its effect is a real file, which Blade's own tests also use as a
 * fault marker: the flags marked "for tests" make it fail, hang or crash on
 * demand; a real plugin has none of them.
 */
/* nanosleep and struct timespec under -std=c99 */
#define _POSIX_C_SOURCE 200809L

#include <blade/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char spec_yaml[] =
    "version: v1\n"
    "kind: plugin\n"
    "items:\n"
    "- target: cmarker\n"
    "  shortDesc: Marker files, from a plugin written in C\n"
    "  scope: host\n"
    "  actions:\n"
    "  - action: touch\n"
    "    aliases: [t]\n"
    "    shortDesc: create a file holding the experiment uid\n"
    "    flags:\n"
    "    - name: path\n"
    "      desc: absolute path of the marker file\n"
    "      required: true\n"
    "      type: path\n"
    "    - name: fail\n"
    "      desc: make create fail with INVALID_ARGUMENT (for tests)\n"
    "      noArgs: true\n"
    "    - name: fail-on-host\n"
    "      desc: make create fail with FAILED_PRECONDITION before any step (for tests)\n"
    "      noArgs: true\n"
    "    - name: hang-ms\n"
    "      desc: after the file is made, wait this long before answering (for crash tests)\n"
    "      type: int\n"
    "      min: 0\n"
    "      max: 60000\n"
    "    - name: fail-after-write\n"
    "      desc: make the file, then fail with INTERNAL without removing it (for tests)\n"
    "      noArgs: true\n"
    "    - name: crash-in-destroy\n"
    "      desc: destroy dies of SIGSEGV, as a buggy plugin would (for tests)\n"
    "      noArgs: true\n"
    "    example: |\n"
    "      blade create cmarker touch --path /tmp/m\n";

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

static blade_status c_init(const blade_host_api *api, blade_host *host, blade_call *call,
                           blade_instance **out) {
  blade_instance *self;
  *out = NULL;
  /* Use only what this ABI minor guarantees, checked the documented way. */
  if (!BLADE_HAS_FIELD(api, blade_host_api, progress)) {
    say(api, call, BLADE_OUTPUT_MESSAGE, "host API table too old");
    return BLADE_STATUS_NOT_SUPPORTED;
  }
  self = (blade_instance *)malloc(sizeof *self);
  if (!self) return BLADE_STATUS_INTERNAL;
  self->api = api;
  self->host = host;
  *out = self;
  return BLADE_STATUS_OK;
}

static void c_shutdown(blade_instance *self) { free(self); }

static blade_status c_create(blade_instance *self, const blade_request *req, blade_call *call) {
  const char *path = flag(req, "path");
  const char *fail = flag(req, "fail");
  char restore[4200];
  int fd;
  size_t uid_len = strlen(req->uid);

  if (fail && strcmp(fail, "true") == 0) {
    say(self->api, call, BLADE_OUTPUT_MESSAGE, "asked to fail");
    return BLADE_STATUS_INVALID_ARGUMENT;
  }
  if (flag(req, "fail-on-host") && strcmp(flag(req, "fail-on-host"), "true") == 0) {
    say(self->api, call, BLADE_OUTPUT_MESSAGE, "asked to fail on the host");
    return BLADE_STATUS_FAILED_PRECONDITION;
  }
  if (!path || strlen(path) > 4000 || strchr(path, '"') || strchr(path, '\\')) {
    say(self->api, call, BLADE_OUTPUT_MESSAGE, "path is missing or not representable");
    return BLADE_STATUS_INVALID_ARGUMENT;
  }
  /* The restore record names the file, so destroy needs nothing else. It is
   * written ahead (ABI 1.2) so a crash right after the open leaves it. */
  snprintf(restore, sizeof restore, "{\"path\":\"%s\"}", path);
  if (BLADE_HAS_FIELD(self->api, blade_host_api, save_restore) && self->api->save_restore) {
    blade_status saved = self->api->save_restore(call, restore, strlen(restore));
    if (saved != BLADE_STATUS_OK) {
      say(self->api, call, BLADE_OUTPUT_MESSAGE, "restore record not stored; nothing done");
      return saved;
    }
  }
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) {
    say(self->api, call, BLADE_OUTPUT_MESSAGE, strerror(errno));
    return errno == EEXIST ? BLADE_STATUS_ALREADY_EXISTS : BLADE_STATUS_FAILED_PRECONDITION;
  }
  if (write(fd, req->uid, uid_len) != (ssize_t)uid_len) {
    close(fd);
    unlink(path);
    say(self->api, call, BLADE_OUTPUT_MESSAGE, "short write");
    return BLADE_STATUS_INTERNAL;
  }
  close(fd);
  if (flag(req, "fail-after-write") && strcmp(flag(req, "fail-after-write"), "true") == 0) {
    say(self->api, call, BLADE_OUTPUT_MESSAGE, "asked to fail after making the file");
    return BLADE_STATUS_INTERNAL;
  }
  if (flag(req, "hang-ms")) {
    long left = atol(flag(req, "hang-ms"));
    struct timespec step = {0, 10 * 1000 * 1000};
    while (left > 0 && !self->api->is_cancelled(call)) {
      nanosleep(&step, NULL);
      left -= 10;
    }
  }
  say(self->api, call, BLADE_OUTPUT_RESTORE, restore);
  say(self->api, call, BLADE_OUTPUT_RESULT, restore);
  self->api->log(self->host, BLADE_LOG_INFO, "marker created");
  return BLADE_STATUS_OK;
}

static blade_status c_destroy(blade_instance *self, const blade_request *req, blade_call *call) {
  /* The record is {"path":"..."} as written above; the flags carry the same
   * path, and they are validated by the host, so prefer them. */
  const char *path = flag(req, "path");
  char held[64] = {0};
  int fd;
  if (!path) return BLADE_STATUS_OK;
  if (flag(req, "crash-in-destroy") && strcmp(flag(req, "crash-in-destroy"), "true") == 0)
    raise(SIGSEGV);
  fd = open(path, O_RDONLY);
  if (fd < 0) return BLADE_STATUS_OK; /* already gone: idempotent */
  if (read(fd, held, sizeof held - 1) < 0) held[0] = '\0';
  close(fd);
  if (strcmp(held, req->uid) != 0) {
    self->api->log(self->host, BLADE_LOG_WARN, "marker belongs to another experiment; kept");
    return BLADE_STATUS_OK;
  }
  if (unlink(path) != 0 && errno != ENOENT) {
    say(self->api, call, BLADE_OUTPUT_MESSAGE, strerror(errno));
    return BLADE_STATUS_PERMISSION_DENIED;
  }
  return BLADE_STATUS_OK;
}

/* min_minor 0: every newer host field (save_restore) is checked before use. */
static const blade_plugin_descriptor descriptor = {
    BLADE_PLUGIN_DESCRIPTOR_INIT("c-marker", "1.0.0", spec_yaml, 0),
    .capabilities = 0, /* no optional capabilities: no dry_run */
    .init = c_init,
    .shutdown = c_shutdown,
    .create = c_create,
    .destroy = c_destroy,
};

BLADE_PLUGIN_EXPORT const blade_plugin_descriptor *BLADE_PLUGIN_ENTRY(void) { return &descriptor; }
