/*
 * A plugin with a configuration section (ABI 1.3), in C99 with only
 * blade/plugin.h. It declares a config_schema; bladed validates the
 * plugin's section of its config file against it and hands the result,
 * defaults filled in, to init as host_info.config_json. `configurable
 * show` answers that text as its RESULT ({"config": {...}}), so a test
 * sees exactly what the plugin received.
 */
#include <blade/plugin.h>

#include <stdlib.h>
#include <string.h>

static const char spec_yaml[] =
    "version: v1\n"
    "kind: plugin\n"
    "items:\n"
    "- target: configurable\n"
    "  shortDesc: Reports the configuration it was given (for tests)\n"
    "  scope: host\n"
    "  actions:\n"
    "  - action: show\n"
    "    shortDesc: answer the configuration section as the result\n"
    "    example: |\n"
    "      blade create configurable show\n";

/* marker-dir: any string; max: 1..10, 3 when not configured; nothing else. */
static const char config_schema[] =
    "{\"type\": \"object\","
    " \"description\": \"test plugin configuration\","
    " \"properties\": {"
    "   \"marker-dir\": {\"type\": \"string\", \"minLength\": 1},"
    "   \"max\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 10, \"default\": 3}"
    " },"
    " \"additionalProperties\": false}";

struct blade_instance {
  const blade_host_api *api;
  char *result; /* {"config": <config_json>} */
};

static void say(const blade_host_api *api, blade_call *call, blade_output_field field,
                const char *text) {
  api->set_output(call, field, text, strlen(text));
}

static blade_status cfg_init(const blade_host_api *api, blade_host *host, blade_call *call,
                             blade_instance **out) {
  const blade_host_info *info = api->host_info(host);
  const char *config = "{}";
  blade_instance *self;
  size_t size;
  *out = NULL;
  /* A 1.3 host always sets it; checked the documented way all the same. */
  if (info && BLADE_HAS_MEMBER(info, config_json) && info->config_json) config = info->config_json;
  self = (blade_instance *)malloc(sizeof *self);
  if (!self) return BLADE_STATUS_INTERNAL;
  size = strlen(config) + sizeof "{\"config\":}";
  self->result = (char *)malloc(size);
  if (!self->result) {
    free(self);
    return BLADE_STATUS_INTERNAL;
  }
  strcpy(self->result, "{\"config\":");
  strcat(self->result, config);
  strcat(self->result, "}");
  self->api = api;
  *out = self;
  (void)call;
  return BLADE_STATUS_OK;
}

static void cfg_shutdown(blade_instance *self) {
  free(self->result);
  free(self);
}

static blade_status cfg_create(blade_instance *self, const blade_request *req, blade_call *call) {
  (void)req;
  say(self->api, call, BLADE_OUTPUT_RESTORE, "{}");
  say(self->api, call, BLADE_OUTPUT_RESULT, self->result);
  return BLADE_STATUS_OK;
}

static blade_status cfg_destroy(blade_instance *self, const blade_request *req, blade_call *call) {
  (void)self;
  (void)req;
  (void)call;
  return BLADE_STATUS_OK;
}

static const blade_plugin_descriptor descriptor = {
    /* 3: host_info.config_json is ABI 1.3's */
    BLADE_PLUGIN_DESCRIPTOR_INIT("configurable", "1.0.0", spec_yaml, 3),
    .capabilities = 0,
    .init = cfg_init,
    .shutdown = cfg_shutdown,
    .create = cfg_create,
    .destroy = cfg_destroy,
    .dry_run = NULL,
    .config_schema = config_schema,
};

BLADE_PLUGIN_EXPORT const blade_plugin_descriptor *BLADE_PLUGIN_ENTRY(void) { return &descriptor; }
