// The ABI's layout is pinned: a change here breaks every plugin built
// before it. Fields may only be appended (bumping the minor).
#include <blade/plugin.h>

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include <doctest/doctest.h>

#include "c_layout.h"

static_assert(sizeof(void *) == 8, "layouts below are pinned for LP64 targets");

static_assert(sizeof(blade_host_info) == 48);
static_assert(offsetof(blade_host_info, host_version) == 8);
static_assert(offsetof(blade_host_info, state_dir) == 16);
static_assert(offsetof(blade_host_info, daemon_pid) == 24);
static_assert(offsetof(blade_host_info, protected_paths) == 32);  // ABI 1.2
static_assert(offsetof(blade_host_info, config_json) == 40);      // ABI 1.3

static_assert(sizeof(blade_host_api) == 96);
static_assert(offsetof(blade_host_api, log) == 8);
static_assert(offsetof(blade_host_api, set_output) == 24);
static_assert(offsetof(blade_host_api, progress) == 48);
static_assert(offsetof(blade_host_api, fault_ended) == 56);   // ABI 1.1
static_assert(offsetof(blade_host_api, save_restore) == 64);  // ABI 1.2
static_assert(offsetof(blade_host_api, subscribe) == 72);        // ABI 1.5
static_assert(offsetof(blade_host_api, unsubscribe) == 80);      // ABI 1.5
static_assert(offsetof(blade_host_api, report_counters) == 88);  // ABI 1.5

static_assert(sizeof(blade_request) == 64);
static_assert(offsetof(blade_request, flag_count) == 4);
static_assert(offsetof(blade_request, uid) == 8);
static_assert(offsetof(blade_request, flag_names) == 40);
static_assert(offsetof(blade_request, restore_json) == 56);

static_assert(sizeof(blade_plugin_descriptor) == 88);
static_assert(offsetof(blade_plugin_descriptor, abi_minor) == 6);
static_assert(offsetof(blade_plugin_descriptor, spec_yaml) == 24);
static_assert(offsetof(blade_plugin_descriptor, capabilities) == 32);
static_assert(offsetof(blade_plugin_descriptor, init) == 40);
static_assert(offsetof(blade_plugin_descriptor, dry_run) == 72);
static_assert(offsetof(blade_plugin_descriptor, config_schema) == 80);  // ABI 1.3

// ABI 1.4 (RESULT set in destroy: the destroy's report) adds no field: a
// plugin built against the 1.3 header has the very layouts pinned here.

static_assert(sizeof(blade_status) == 4);
// Status values are part of the ABI: never renumbered.
static_assert(BLADE_STATUS_OK == 0 && BLADE_STATUS_INVALID_ARGUMENT == 1 &&
              BLADE_STATUS_NOT_SUPPORTED == 2 && BLADE_STATUS_PERMISSION_DENIED == 3 &&
              BLADE_STATUS_TIMEOUT == 4 && BLADE_STATUS_CANCELLED == 5 &&
              BLADE_STATUS_NOT_FOUND == 6 && BLADE_STATUS_ALREADY_EXISTS == 7 &&
              BLADE_STATUS_FAILED_PRECONDITION == 8 && BLADE_STATUS_INTERNAL == 9);
static_assert(BLADE_OUTPUT_RESULT == 0 && BLADE_OUTPUT_RESTORE == 1 && BLADE_OUTPUT_MESSAGE == 2 &&
              BLADE_OUTPUT_PLAN == 3);

TEST_CASE("the C compiler lays the ABI structs out as the C++ compiler does") {
  const std::array<std::size_t, 28> cpp = {
      sizeof(blade_host_info),
      offsetof(blade_host_info, host_version),
      offsetof(blade_host_info, state_dir),
      offsetof(blade_host_info, daemon_pid),
      offsetof(blade_host_info, protected_paths),
      offsetof(blade_host_info, config_json),
      sizeof(blade_host_api),
      offsetof(blade_host_api, log),
      offsetof(blade_host_api, set_output),
      offsetof(blade_host_api, progress),
      offsetof(blade_host_api, fault_ended),
      offsetof(blade_host_api, save_restore),
      offsetof(blade_host_api, subscribe),
      offsetof(blade_host_api, unsubscribe),
      offsetof(blade_host_api, report_counters),
      sizeof(blade_request),
      offsetof(blade_request, flag_count),
      offsetof(blade_request, uid),
      offsetof(blade_request, flag_names),
      offsetof(blade_request, restore_json),
      sizeof(blade_plugin_descriptor),
      offsetof(blade_plugin_descriptor, abi_minor),
      offsetof(blade_plugin_descriptor, spec_yaml),
      offsetof(blade_plugin_descriptor, capabilities),
      offsetof(blade_plugin_descriptor, init),
      offsetof(blade_plugin_descriptor, dry_run),
      offsetof(blade_plugin_descriptor, config_schema),
      sizeof(blade_status),
  };
  std::array<std::size_t, 32> c{};
  REQUIRE(blade_abi_c_layout(c.data(), c.size()) == cpp.size());
  for (std::size_t i = 0; i < cpp.size(); ++i) {
    CAPTURE(i);
    CHECK(c[i] == cpp[i]);
  }
}

TEST_CASE("BLADE_HAS_FIELD reads struct_size the way an older or newer reader must") {
  blade_plugin_descriptor d{};
  d.struct_size =
      offsetof(blade_plugin_descriptor, dry_run);  // written by a writer without dry_run
  CHECK(BLADE_HAS_FIELD(&d, blade_plugin_descriptor, destroy));
  CHECK_FALSE(BLADE_HAS_FIELD(&d, blade_plugin_descriptor, dry_run));
  d.struct_size = sizeof(blade_plugin_descriptor);
  CHECK(BLADE_HAS_FIELD(&d, blade_plugin_descriptor, dry_run));
}

TEST_CASE("capability bits are distinct powers of two, WRITES_AHEAD the 1.6 one") {
  CHECK(BLADE_CAP_DRY_RUN == 0x1);
  CHECK(BLADE_CAP_CONCURRENT_CALLS == 0x2);
  CHECK(BLADE_CAP_WRITES_AHEAD == 0x4);
  CHECK(BLADE_PLUGIN_ABI_MINOR >= 6);
}

TEST_CASE("the version strings spell the version numbers") {
  CHECK(std::string_view(BLADE_PLUGIN_ABI_VERSION_STRING) == "1.6");
  CHECK(std::string(BLADE_PLUGIN_ABI_VERSION_STRING) ==
        std::to_string(BLADE_PLUGIN_ABI_MAJOR) + "." + std::to_string(BLADE_PLUGIN_ABI_MINOR));
  CHECK(std::string(BLADE_PLUGIN_ABI_MINOR_STRING) == std::to_string(BLADE_PLUGIN_ABI_MINOR));
}

namespace {
void noop_fault_ended(blade_host *, const char *, const char *) {}
uint64_t noop_subscribe(blade_host *, const char *, blade_topic_fn, void *) { return 1; }
void noop_unsubscribe(blade_host *, uint64_t) {}
blade_status noop_report_counters(blade_host *, const char *, const char *, size_t) {
  return BLADE_STATUS_OK;
}
}  // namespace

// Checked in both languages: each case is asked of the C++ compiler here
// and of the C compiler through blade_abi_c_has.
TEST_CASE("BLADE_HAS_MEMBER and BLADE_HAS_FUNC honour struct_size and NULL") {
  blade_host_api api{};
  blade_host_info info{};
  const char *const no_paths[] = {nullptr};
  info.protected_paths = no_paths;
  info.config_json = "{}";

  SUBCASE("a 1.2 writer: config_json lies outside struct_size") {
    info.struct_size = offsetof(blade_host_info, config_json);
    CHECK(BLADE_HAS_MEMBER(&info, protected_paths));
    CHECK_FALSE(BLADE_HAS_MEMBER(&info, config_json));
    api.struct_size = sizeof api;
    CHECK(blade_abi_c_has(&api, &info) == 4);
  }
  SUBCASE("a field inside struct_size but NULL is not a function") {
    api.struct_size = sizeof api;
    api.fault_ended = nullptr;
    info.struct_size = sizeof info;
    CHECK(BLADE_HAS_MEMBER(&api, fault_ended));
    CHECK_FALSE(BLADE_HAS_FUNC(&api, fault_ended));
    CHECK(BLADE_HAS_MEMBER(&info, config_json));
    CHECK(blade_abi_c_has(&api, &info) == (4 | 8));
  }
  SUBCASE("a present function inside struct_size is one") {
    api.struct_size = sizeof api;
    api.fault_ended = noop_fault_ended;
    info.struct_size = sizeof info;
    CHECK(BLADE_HAS_FUNC(&api, fault_ended));
    CHECK(blade_abi_c_has(&api, &info) == (1 | 4 | 8));
  }
  SUBCASE("a 1.4 writer: the ABI 1.5 functions lie outside struct_size") {
    api.struct_size = offsetof(blade_host_api, subscribe);
    api.fault_ended = noop_fault_ended;
    api.subscribe = noop_subscribe;  // past the end: must not be read
    api.unsubscribe = noop_unsubscribe;
    api.report_counters = noop_report_counters;
    info.struct_size = sizeof info;
    CHECK_FALSE(BLADE_HAS_FUNC(&api, subscribe));
    CHECK_FALSE(BLADE_HAS_FUNC(&api, report_counters));
    CHECK(blade_abi_c_has(&api, &info) == (1 | 4 | 8));
    api.struct_size = sizeof api;  // a 1.5 writer
    CHECK(BLADE_HAS_FUNC(&api, subscribe));
    CHECK(blade_abi_c_has(&api, &info) == (1 | 4 | 8 | 16 | 32 | 64));
  }
  SUBCASE("a set pointer outside struct_size is not read") {
    api.struct_size = offsetof(blade_host_api, fault_ended);  // a 1.0 writer
    api.fault_ended = noop_fault_ended;
    info.struct_size = sizeof info;
    CHECK_FALSE(BLADE_HAS_FUNC(&api, fault_ended));
    CHECK(blade_abi_c_has(&api, &info) == (4 | 8));
  }
}

TEST_CASE("BLADE_PLUGIN_DESCRIPTOR_INIT, compiled as C99, fills the leading fields") {
  const blade_plugin_descriptor *d = blade_abi_c_descriptor();
  CHECK(d->struct_size == sizeof(blade_plugin_descriptor));
  CHECK(d->abi_major == BLADE_PLUGIN_ABI_MAJOR);
  CHECK(d->abi_minor == 2);
  CHECK(std::string_view(d->name) == "c-layout");
  CHECK(std::string_view(d->version) == "1.2.3");
  CHECK(std::string_view(d->spec_yaml) == "items: []");
  // The fields after it are the plugin's own.
  CHECK(d->capabilities == BLADE_CAP_DRY_RUN);
  CHECK((d->create != nullptr));
  CHECK((d->init == nullptr));
  CHECK(std::string_view(d->config_schema) == "{}");
}
