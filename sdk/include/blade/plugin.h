/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Blade executor plugin ABI, major version 1.
 *
 * A plugin is a shared object that exports exactly one symbol,
 * BLADE_PLUGIN_ENTRY (blade_plugin_entry_v1), returning a constant
 * descriptor. Everything else is reached through tables of plain C data, so
 * the same interface can later be served by an out-of-process plugin host.
 *
 * Stability rules (what a plugin may rely on across core releases):
 *  - The ABI major is in the entry symbol's name and in the descriptor. A
 *    host loads a plugin only when the majors are equal and the plugin's
 *    minimum minor is <= the host's minor. A changed behaviour (threading,
 *    ownership, lifetime) is a major change even if no signature changes.
 *  - Every struct that crosses the boundary starts with `struct_size`.
 *    Fields are only ever appended. A reader checks that a field lies inside
 *    `struct_size` before reading it (BLADE_HAS_FIELD does this).
 *  - Optional functions are NULL-able pointers announced by capability bits;
 *    the host refuses a plugin whose bits and pointers disagree.
 *  - Nothing unwinds across the boundary: functions return a blade_status.
 *    A value the host does not know is treated as BLADE_STATUS_INTERNAL.
 *
 * Ownership:
 *  - Everything passed into a plugin function is borrowed for that call
 *    only; copy what you keep.
 *  - The descriptor and the strings it points to (name, version, spec YAML)
 *    are static: valid for as long as the library is loaded.
 *  - A plugin hands data back only through blade_host_api.set_output, which
 *    copies at once; no plugin memory needs to outlive the call.
 *  - Whoever allocates frees: the plugin frees its instance in shutdown.
 *
 * Threads (the default contract, per function below):
 *  - init and shutdown are called once per instance, never concurrently with
 *    any other call on that instance.
 *  - create, destroy and dry_run on one instance are serialised by the host,
 *    unless the plugin sets BLADE_CAP_CONCURRENT_CALLS, in which case they
 *    may run concurrently from several host threads.
 *  - Plugin-global state must be thread-safe (several hosts may, in tests,
 *    load the same library).
 *  - Every host callback is thread-safe and may be called from any thread,
 *    including threads the plugin started, for as long as the instance
 *    lives. Call-scoped callbacks are valid only during that call.
 *
 * This header is C99 and pedantic-clean; it is the whole contract.
 */
#ifndef BLADE_PLUGIN_H
#define BLADE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BLADE_PLUGIN_ABI_MAJOR 1
#define BLADE_PLUGIN_ABI_MINOR 6

/* The same numbers as strings, for messages and --version output; the
 * pkg-config variables abi_major/abi_minor are generated from these lines. */
#define BLADE_PLUGIN_STRINGIFY_(x) #x
#define BLADE_PLUGIN_STRINGIFY(x) BLADE_PLUGIN_STRINGIFY_(x)
#define BLADE_PLUGIN_ABI_MAJOR_STRING BLADE_PLUGIN_STRINGIFY(BLADE_PLUGIN_ABI_MAJOR)
#define BLADE_PLUGIN_ABI_MINOR_STRING BLADE_PLUGIN_STRINGIFY(BLADE_PLUGIN_ABI_MINOR)
#define BLADE_PLUGIN_ABI_VERSION_STRING \
  BLADE_PLUGIN_ABI_MAJOR_STRING "." BLADE_PLUGIN_ABI_MINOR_STRING

/* The exported entry symbol carries the ABI major, so a library built for
 * another major is never mistaken for this one. */
#define BLADE_PLUGIN_ENTRY blade_plugin_entry_v1
#define BLADE_PLUGIN_ENTRY_NAME "blade_plugin_entry_v1"
/* Prefix shared by every major's entry symbol; the host uses it to name the
 * major of a library it cannot load. */
#define BLADE_PLUGIN_ENTRY_PREFIX "blade_plugin_entry_v"

/* Marks the entry symbol for export when the plugin is built with
 * -fvisibility=hidden (which it should be). */
#if defined(__GNUC__) || defined(__clang__)
#define BLADE_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define BLADE_PLUGIN_EXPORT
#endif

/* True when `field` of the struct at `ptr` lies inside ptr->struct_size,
 * i.e. the writer of the struct knew about the field. */
#define BLADE_HAS_FIELD(ptr, type, field) \
  ((ptr)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* The same test without naming the type (the offset is taken from `ptr`
 * itself; nothing is read but struct_size). */
#define BLADE_HAS_MEMBER(ptr, field)                                          \
  ((size_t)((const char *)&(ptr)->field - (const char *)(ptr)) +              \
       sizeof((ptr)->field) <=                                                \
   (size_t)(ptr)->struct_size)

/* True when the optional function pointer `field` of the struct at `ptr` is
 * both inside struct_size and non-NULL: the one test to make before calling
 * an optional host or plugin function, e.g.
 *   if (BLADE_HAS_FUNC(api, fault_ended)) api->fault_ended(host, uid, why); */
#define BLADE_HAS_FUNC(ptr, field) (BLADE_HAS_MEMBER(ptr, field) && (ptr)->field != NULL)

/* One status enum for every function; values are never renumbered. */
typedef enum blade_status {
  BLADE_STATUS_OK = 0,
  BLADE_STATUS_INVALID_ARGUMENT = 1,    /* a flag's value cannot work here */
  BLADE_STATUS_NOT_SUPPORTED = 2,       /* this host lacks a feature the fault needs */
  BLADE_STATUS_PERMISSION_DENIED = 3,   /* the daemon lacks a privilege */
  BLADE_STATUS_TIMEOUT = 4,             /* the call's deadline passed */
  BLADE_STATUS_CANCELLED = 5,           /* the host asked the call to stop */
  BLADE_STATUS_NOT_FOUND = 6,           /* the thing to act on does not exist */
  BLADE_STATUS_ALREADY_EXISTS = 7,      /* a conflicting fault is already active */
  BLADE_STATUS_FAILED_PRECONDITION = 8, /* the host is not in a state to apply it */
  BLADE_STATUS_INTERNAL = 9             /* a bug */
} blade_status;

typedef enum blade_log_level {
  BLADE_LOG_DEBUG = 0,
  BLADE_LOG_INFO = 1,
  BLADE_LOG_WARN = 2,
  BLADE_LOG_ERROR = 3
} blade_log_level;

/* What a plugin hands back through set_output. */
typedef enum blade_output_field {
  /* create: a JSON value shown to the user as the experiment's result.
   * destroy (ABI 1.4): a JSON object, the destroy's report of what it found
   * and did (e.g. {"restored": false, "left_alone": "<why>"}), stored with
   * the experiment beside the create's result and shown apart from it. A
   * 1.4 host refuses a report that is not a JSON object
   * (BLADE_STATUS_INVALID_ARGUMENT, nothing stored) and the destroy's status
   * stands. Any older host accepts a JSON report in destroy and ignores it,
   * so a plugin may set it unconditionally, whatever minor it declares; but
   * a text that is not JSON fails the destroy as INTERNAL there. The report
   * of each destroy call replaces the last one (a retry's, recovery's). */
  BLADE_OUTPUT_RESULT = 0,
  /* A JSON value the host persists before reporting success and passes to
   * destroy, possibly in another process after a crash: everything destroy
   * needs to undo the fault. Persisted only when create returns; a plugin
   * with irreversible steps also writes it ahead (host_api.save_restore). */
  BLADE_OUTPUT_RESTORE = 1,
  /* Human-readable text explaining a non-OK status. */
  BLADE_OUTPUT_MESSAGE = 2,
  /* dry_run only: a JSON value describing what create would change. */
  BLADE_OUTPUT_PLAN = 3
} blade_output_field;

/* Capability bits (blade_plugin_descriptor.capabilities). */
#define BLADE_CAP_DRY_RUN UINT64_C(0x1)          /* dry_run is set */
#define BLADE_CAP_CONCURRENT_CALLS UINT64_C(0x2) /* create/destroy/dry_run may overlap */
/* ABI 1.6. A promise: create takes no step that leaves anything behind
 * before its first save_restore (or before it returns, if it writes nothing
 * ahead). The host then stores nothing before the call: a crash before the
 * first record has nothing to undo. A plugin that may change anything first
 * (a file, a rule, a child) must not set it. A 1.6 host takes the bit
 * whatever minor the plugin declares (it only promises); hosts before 1.6
 * refuse unknown bits, and declaring minor 6 makes that refusal name both
 * versions. */
#define BLADE_CAP_WRITES_AHEAD UINT64_C(0x4)

/* Opaque handles. */
typedef struct blade_host blade_host;         /* the host, for the instance's life */
typedef struct blade_call blade_call;         /* one call, valid during that call */
typedef struct blade_instance blade_instance; /* the plugin's own state */

/* ABI 1.5. Receives a topic's document (see blade_host_api.subscribe): the
 * whole current document as JSON text, `len` bytes, borrowed for the call.
 * `ctx` is the pointer given to subscribe. */
typedef void (*blade_topic_fn)(void *ctx, const char *topic, const char *json, size_t len);

/* Facts about the host, returned by blade_host_api.host_info; valid for the
 * instance's life. */
typedef struct blade_host_info {
  uint32_t struct_size;
  uint16_t abi_major;
  uint16_t abi_minor;
  const char *host_version; /* the daemon's version, e.g. "0.1.0" */
  /* A directory private to this plugin that survives restarts (backups of
   * files a fault changed live here). Created by the host. */
  const char *state_dir;
  int32_t daemon_pid; /* never a target of a fault */
  int32_t reserved;
  /* ABI 1.2. NULL-terminated list of absolute paths the daemon itself lives
   * on: its database with the WAL and SHM files beside it, its state
   * directory (every plugin's state dir is inside), its plugin directories.
   * A fault must never write, move, delete, chmod, fill or burn at or under
   * any of them: losing the database forgets every active fault. A 1.1 host
   * has no such field: check BLADE_HAS_FIELD(info, blade_host_info,
   * protected_paths). */
  const char *const *protected_paths;
  /* ABI 1.3. This plugin's section of the daemon's configuration file
   * (`plugins: <name>: {...}`) as a JSON object, already validated against
   * the descriptor's config_schema; "{}" when the section is absent. NULL
   * from a 1.2 host: check BLADE_HAS_MEMBER(info, config_json). */
  const char *config_json;
} blade_host_info;

/* Services the host offers. Passed to init; valid until shutdown returns. */
typedef struct blade_host_api {
  uint32_t struct_size;
  uint16_t abi_major;
  uint16_t abi_minor;

  /* Writes one log line attributed to the plugin. Thread-safe. */
  void (*log)(blade_host *host, blade_log_level level, const char *message);

  /* Host facts. Thread-safe. */
  const blade_host_info *(*host_info)(blade_host *host);

  /* Copies `len` bytes of `data` into the call's output `field`; a later
   * call for the same field replaces it. RESULT, RESTORE and PLAN must be
   * JSON. Returns BLADE_STATUS_INVALID_ARGUMENT for an unknown field.
   * Valid only during the call that received `call`. */
  blade_status (*set_output)(blade_call *call, blade_output_field field, const char *data,
                             size_t len);

  /* Non-zero once the host wants the call to stop (shutdown, deadline).
   * Long operations poll it and return BLADE_STATUS_CANCELLED. */
  int (*is_cancelled)(blade_call *call);

  /* Milliseconds left before the call's deadline; INT64_MAX when it has
   * none, 0 or less once it has passed. */
  int64_t (*remaining_ms)(blade_call *call);

  /* Progress of a long call, 0..100, with an optional note (may be NULL). */
  void (*progress)(blade_call *call, int32_t percent, const char *note);

  /* ABI 1.1. The fault of experiment `uid` ended on its own, outside any
   * call (the process holding it was killed, e.g. by the OOM killer): the
   * host marks the experiment failed with `reason`, and a later destroy has
   * nothing to undo. Both strings are copied before it returns. Thread-safe;
   * any plugin thread may call it while the instance exists. A 1.0 host has
   * no such field: check BLADE_HAS_FIELD(api, blade_host_api, fault_ended). */
  void (*fault_ended)(blade_host *host, const char *uid, const char *reason);

  /* ABI 1.2. Write-ahead restore record, create only. Persists `json` (len
   * bytes) as the experiment's restore record and returns only once it is
   * durable. A plugin calls it BEFORE each irreversible step, with a record
   * from which destroy can undo every step taken so far plus the one about
   * to be taken; destroy must therefore accept a record naming a step that
   * never happened (a crash between this call and the step). Each call
   * replaces the previous record; the RESTORE output at the end of a
   * successful create replaces it too.
   * A non-OK status means the record is not stored (the store is full or
   * locked, or `json` is not JSON): the plugin must not take the step, must
   * undo what it did, and fail the create with that status. Outside create
   * it returns BLADE_STATUS_FAILED_PRECONDITION. A 1.1 host has no such
   * field: check BLADE_HAS_FIELD(api, blade_host_api, save_restore); there
   * the record is stored only when create returns. */
  blade_status (*save_restore)(blade_call *call, const char *json, size_t len);

  /* ABI 1.5. Follows a document the host keeps, named by `topic`, e.g.
   * "http.rules" (the compiled HTTP fault rule set; its format is in the
   * SDK documentation). `fn` is called once with the current document
   * before subscribe returns, then again with the whole new document after
   * every change, on a host thread. Calls for one subscription never
   * overlap and come in the order of the changes; fn must return quickly
   * (copy or parse, never block) and must not call subscribe or
   * unsubscribe. Returns a non-zero subscription id, or 0 for a topic the
   * host does not know (the plugin then says so and fails its call with
   * BLADE_STATUS_NOT_SUPPORTED). Thread-safe. A 1.4 host has no such field:
   * check BLADE_HAS_FUNC(api, subscribe). */
  uint64_t (*subscribe)(blade_host *host, const char *topic, blade_topic_fn fn, void *ctx);

  /* ABI 1.5. Ends subscription `id`. Once it returns, fn is not running for
   * it and is never called again, so ctx may be freed. Unknown ids are
   * ignored. Every subscription still open is ended by the host after the
   * instance's shutdown returns. Thread-safe; must not be called from fn. */
  void (*unsubscribe)(blade_host *host, uint64_t id);

  /* ABI 1.5. The live counters of experiment `uid`, a JSON object
   *   {"series": [{"labels": {"rule": "checkout/0"},
   *                "counters": {"total_requests": 12, "errors": 0}}]}
   * (label and counter names [a-z_][a-z0-9_]*, at most 64 series, counter
   * values non-negative integers; the complete rules, with their limits,
   * are written out in the SDK's blade/counters.hpp, whose parse_counters
   * the host applies). Each call replaces the last; the host
   * shows them in its metrics as blade_plugin_<counter>_total{plugin,uid,
   * <labels>} and with the experiment while it runs, and forgets them when
   * the experiment's destroy returns (a destroy reports the final figures
   * in its RESULT). Returns BLADE_STATUS_INVALID_ARGUMENT, keeping the last
   * good value, for a text that breaks those rules. Thread-safe; may be
   * called from any plugin thread. A 1.4 host has no such field: check
   * BLADE_HAS_FUNC(api, report_counters). */
  blade_status (*report_counters)(blade_host *host, const char *uid, const char *json, size_t len);
} blade_host_api;

/* One request to create, destroy or plan a fault. Borrowed for the call. */
typedef struct blade_request {
  uint32_t struct_size;
  uint32_t flag_count;
  const char *uid;    /* 16 lowercase hex characters */
  const char *scope;  /* "host", ... */
  const char *target; /* e.g. "cpu" */
  const char *action; /* canonical action name, aliases already resolved */
  /* Flags validated against the spec, defaults applied: flag_count parallel
   * name/value pairs. Booleans are "true"/"false". */
  const char *const *flag_names;
  const char *const *flag_values;
  /* destroy only: the RESTORE output of the matching create, or the last
   * record it saved ahead with save_restore when it never returned (a crash
   * mid-create), as JSON; NULL for create and dry_run, and for a create that
   * recorded nothing. */
  const char *restore_json;
} blade_request;

typedef struct blade_plugin_descriptor {
  uint32_t struct_size;
  uint16_t abi_major; /* BLADE_PLUGIN_ABI_MAJOR the plugin was built with */
  uint16_t abi_minor; /* the lowest host minor the plugin needs */
  const char *name;   /* unique among plugins, [a-z0-9_-]+ */
  const char *version;
  /* ChaosBlade-format spec YAML (version/kind/items), with Blade's optional
   * flag keys type/min/max/values. The host validates every flag against it
   * before a request reaches the plugin. */
  const char *spec_yaml;
  uint64_t capabilities; /* BLADE_CAP_* */

  /* Required. Makes the plugin's instance. `host` and `api` stay valid until
   * shutdown returns. On failure, explain through api->set_output(call,
   * BLADE_OUTPUT_MESSAGE, ...) and leave *out NULL. */
  blade_status (*init)(const blade_host_api *api, blade_host *host, blade_call *call,
                       blade_instance **out);

  /* Required. Stops whatever the instance still runs and frees it. Faults
   * that were not destroyed stay recorded by the host, which destroys them
   * through a new instance at its next start. */
  void (*shutdown)(blade_instance *instance);

  /* Required. Applies the fault. On success, sets RESTORE (and usually
   * RESULT) before returning. On failure, leaves nothing changed. */
  blade_status (*create)(blade_instance *instance, const blade_request *request,
                         blade_call *call);

  /* Required. Undoes the fault from request->restore_json and the flags
   * alone (no in-memory state needed, so it works after a restart).
   * Idempotent: undoing what is already gone is BLADE_STATUS_OK. May say
   * what it found through RESULT (ABI 1.4: a JSON object), e.g. that the
   * fault was already gone or that something found in its place was left
   * alone. */
  blade_status (*destroy)(blade_instance *instance, const blade_request *request,
                          blade_call *call);

  /* Optional (BLADE_CAP_DRY_RUN). Says through PLAN what create would hit
   * (cores, pids, files) without changing anything. */
  blade_status (*dry_run)(blade_instance *instance, const blade_request *request,
                          blade_call *call);

  /* ABI 1.3, optional. A JSON Schema (the subset the host documents: type,
   * properties, required, additionalProperties, enum, minimum, maximum,
   * minLength, maxLength, items, description, default) for this plugin's
   * section of the daemon's configuration. The host refuses to load the
   * plugin when the section does not validate, and hands the section to the
   * instance as host_info.config_json. NULL: the plugin takes no
   * configuration, and a section for it is refused. */
  const char *config_schema;
} blade_plugin_descriptor;

/* For plugins written in C: fills the fields every descriptor starts with;
 * the plugin adds its functions after it with designated initializers, in
 * declaration order. (C++ plugins use blade/plugin.hpp, which builds the
 * descriptor itself; g++ -Wextra would flag the fields left out here.)
 *
 *   static const blade_plugin_descriptor descriptor = {
 *       BLADE_PLUGIN_DESCRIPTOR_INIT("marker", "1.0.0", spec_yaml, 0),
 *       .capabilities = BLADE_CAP_DRY_RUN,
 *       .init = marker_init, .shutdown = marker_shutdown,
 *       .create = marker_create, .destroy = marker_destroy,
 *       .dry_run = marker_dry_run,
 *   };
 *
 * `min_minor` is the lowest host minor the plugin needs: the minor of the
 * newest host field it uses without checking BLADE_HAS_MEMBER first. */
#define BLADE_PLUGIN_DESCRIPTOR_INIT(plugin_name, plugin_version, plugin_spec_yaml, min_minor) \
  .struct_size = sizeof(blade_plugin_descriptor), .abi_major = BLADE_PLUGIN_ABI_MAJOR,         \
  .abi_minor = (min_minor), .name = (plugin_name), .version = (plugin_version),               \
  .spec_yaml = (plugin_spec_yaml)

/* The one exported symbol. Returns a pointer to a static descriptor; must
 * not fail and must not do work beyond returning it. */
typedef const blade_plugin_descriptor *(*blade_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* BLADE_PLUGIN_H */
