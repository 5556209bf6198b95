// The loader against real .so files: the good plugins (plain C and the SDK
// example) with real effects, and one prebuilt plugin for each refusal.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <blade/plugin.h>
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "../support/file_text.hpp"
#include "../support/temp_dir.hpp"
#include "blade/core/plugin/executor.hpp"
#include "blade/core/plugin/plugin_loader.hpp"
#include "blade/core/plugin/registry.hpp"
#include "blade/core/spec/flag_validation.hpp"

namespace fs = std::filesystem;
using blade::PluginRecord;
using blade::test::read_text;
using blade::test::TempDir;

namespace {

const fs::path kTestPlugins = BLADE_TEST_PLUGIN_DIR;
const fs::path kBuiltPlugins = BLADE_BUILT_PLUGIN_DIR;

// Copies built plugins into a fresh dir (mode 0755, ours), as an operator's
// plugin dir would hold them.
fs::path stage(const TempDir &dir, const fs::path &from, std::initializer_list<std::string> names) {
  fs::path plugins = dir / "plugins";
  fs::create_directories(plugins);
  for (const auto &n : names) {
    fs::copy_file(from / (n + ".so"), plugins / (n + ".so"), fs::copy_options::overwrite_existing);
    fs::permissions(plugins / (n + ".so"), fs::perms(0755));
  }
  return plugins;
}

struct Loaded {
  TempDir dir;
  blade::Registry registry;
  std::size_t count = 0;
};

std::unique_ptr<Loaded> load_dir(const fs::path &from, std::initializer_list<std::string> names) {
  auto l = std::make_unique<Loaded>();
  fs::path plugins = stage(l->dir, from, names);
  l->count = blade::load_plugins(blade::discover_plugin_files({plugins}),
                                 {"test", l->dir / "state"}, l->registry);
  return l;
}

// The one record of a single refused file, with its reason.
PluginRecord refused_record(const std::string &name) {
  auto l = load_dir(kTestPlugins, {name});
  auto records = l->registry.records();
  REQUIRE(records.size() == 1);
  CHECK(records[0].status == PluginRecord::Status::Refused);
  CHECK(l->count == 0);
  CHECK(l->registry.plugins().empty());
  return records[0];
}

blade::PluginRequest request(const std::string &uid, const std::string &target,
                             const std::string &action, blade::FlagValues flags) {
  blade::PluginRequest r;
  r.uid = uid;
  r.target = target;
  r.action = action;
  r.flags = std::move(flags);
  return r;
}

}  // namespace

TEST_CASE("a plugin written in plain C loads and injects a real, reversible fault") {
  auto l = load_dir(kTestPlugins, {"c_marker"});
  REQUIRE(l->count == 1);
  auto rec = l->registry.records().at(0);
  CHECK(rec.name == "c-marker");
  CHECK(rec.version == "1.0.0");
  CHECK(rec.abi == "1.0");
  CHECK(rec.targets == std::vector<std::string>{"cmarker touch"});

  // The alias resolves to the canonical action.
  auto resolved = l->registry.resolve("host", "cmarker", "t");
  REQUIRE(resolved);
  CHECK(resolved->action->name == "touch");

  fs::path marker = l->dir / "marker";
  auto flags =
      blade::validate_flags(*resolved->target, *resolved->action, {{"path", marker.string()}});
  auto req = request("00112233445566aa", "cmarker", "touch", flags);
  auto created = resolved->plugin->create(req);
  REQUIRE_MESSAGE(created.ok(), created.message);
  CHECK(read_text(marker) == "00112233445566aa");
  auto restore = nlohmann::json::parse(created.restore_json);
  CHECK(restore["path"] == marker.string());

  req.restore_json = created.restore_json;
  CHECK(resolved->plugin->destroy(req).ok());
  CHECK_FALSE(fs::exists(marker));
  // Destroying what is already gone is success.
  CHECK(resolved->plugin->destroy(req).ok());

  // A plugin's error arrives as status + message.
  auto failing = request("00112233445566ab", "cmarker", "touch",
                         {{"path", marker.string()}, {"fail", "true"}});
  auto failed = resolved->plugin->create(failing);
  CHECK(blade::plugin_status_name(failed.status) == "INVALID_ARGUMENT");
  CHECK(failed.message == "asked to fail");
  CHECK_FALSE(fs::exists(marker));
  CHECK(resolved->plugin->dry_run(req).status != 0);  // no dry run in this plugin
}

TEST_CASE("the SDK example plugin (C++ layer) creates, plans and rolls back") {
  auto l = load_dir(kBuiltPlugins, {"example"});
  REQUIRE(l->count == 1);
  auto resolved = l->registry.resolve("host", "example", "mk");
  REQUIRE(resolved);
  CHECK(resolved->plugin->has_dry_run());

  fs::path marker = l->dir / "example-marker";
  auto flags =
      blade::validate_flags(*resolved->target, *resolved->action, {{"path", marker.string()}});
  CHECK(flags.at("content") == "blade example marker\n");  // default applied
  auto req = request("aaaabbbbccccdddd", "example", "marker", flags);

  auto plan = resolved->plugin->dry_run(req);
  REQUIRE(plan.ok());
  CHECK(nlohmann::json::parse(plan.plan_json)["create_file"] == marker.string());
  CHECK_FALSE(fs::exists(marker));  // a dry run changes nothing

  auto created = resolved->plugin->create(req);
  REQUIRE_MESSAGE(created.ok(), created.message);
  CHECK(read_text(marker) == "blade example marker\n");
  CHECK(nlohmann::json::parse(created.result_json)["bytes"] == 21);

  // A second create on the same path is refused by the plugin, not crashed.
  auto again = resolved->plugin->create(req);
  CHECK(blade::plugin_status_name(again.status) == "ALREADY_EXISTS");
  CHECK(again.message.find("already exists") != std::string::npos);

  req.restore_json = created.restore_json;
  CHECK(resolved->plugin->destroy(req).ok());
  CHECK_FALSE(fs::exists(marker));
  CHECK(resolved->plugin->destroy(req).ok());
}

// "ABI 1.2": what the host says of itself, whatever its minor.
static std::string host_abi() {
  return fmt::format("ABI {}.{}", BLADE_PLUGIN_ABI_MAJOR, BLADE_PLUGIN_ABI_MINOR);
}

TEST_CASE("each bad plugin is refused with a reason naming what is wrong") {
  SUBCASE("ABI major of the entry symbol") {
    auto r = refused_record("abi_major2");
    CHECK(r.error.find("ABI major mismatch") != std::string::npos);
    CHECK(r.error.find("ABI 2") != std::string::npos);
    CHECK(r.error.find(host_abi()) != std::string::npos);
  }
  SUBCASE("ABI major in the descriptor") {
    auto r = refused_record("abi_desc_major2");
    CHECK(r.error == "ABI major mismatch: plugin is built for ABI 2.0, host provides " + host_abi());
  }
  SUBCASE("plugin minor newer than the host's") {
    auto r = refused_record("minor_newer");
    CHECK(r.error == fmt::format("plugin needs ABI 1.{}, newer than the host's {}",
                                 BLADE_PLUGIN_ABI_MINOR + 1, host_abi()));
  }
  SUBCASE("missing entry symbol") {
    auto r = refused_record("no_entry");
    CHECK(r.error.find("missing entry symbol blade_plugin_entry_v1") != std::string::npos);
  }
  SUBCASE("unloadable: undefined symbol") {
    auto r = refused_record("undefined_symbol");
    CHECK(r.error.find("cannot load") == 0);
    CHECK(r.error.find("blade_test_symbol_nobody_defines") != std::string::npos);
  }
  SUBCASE("invalid spec YAML (syntax)") {
    auto r = refused_record("spec_bad_yaml");
    CHECK(r.error.find("invalid spec YAML") == 0);
    CHECK(r.name == "spec-bad-yaml");
  }
  SUBCASE("invalid spec YAML (unknown flag type)") {
    auto r = refused_record("spec_invalid");
    CHECK(r.error.find("invalid spec YAML") == 0);
    CHECK(r.error.find("type") != std::string::npos);
  }
  SUBCASE("missing spec YAML") {
    CHECK(refused_record("spec_null").error == "plugin has no spec YAML");
  }
  SUBCASE("init failure") {
    auto r = refused_record("init_fail");
    CHECK(r.error == "init failed (FAILED_PRECONDITION): device not ready");
    CHECK(r.name == "init-fail");
  }
  SUBCASE("capability bits that disagree with the functions") {
    CHECK(refused_record("caps_mismatch").error == "capability DRY_RUN is set but dry_run is NULL");
  }
}

TEST_CASE("a file that is not a shared object is refused") {
  TempDir dir;
  fs::create_directories(dir / "plugins");
  std::ofstream(dir / "plugins" / "notes.so") << "this is not ELF\n";
  fs::permissions(dir / "plugins" / "notes.so", fs::perms(0644));
  blade::Registry registry;
  blade::load_plugins(blade::discover_plugin_files({dir / "plugins"}), {"test", dir / "state"},
                      registry);
  auto r = registry.records().at(0);
  CHECK(r.status == PluginRecord::Status::Refused);
  CHECK(r.name == "notes");
  CHECK(r.error.find("cannot load") == 0);
}

TEST_CASE("duplicate names and duplicate (target, action) pairs: the first wins") {
  SUBCASE("name") {
    auto l = load_dir(kTestPlugins, {"dup_name_a", "dup_name_b"});
    CHECK(l->count == 1);
    auto records = l->registry.records();
    REQUIRE(records.size() == 2);
    CHECK(records[0].status == PluginRecord::Status::Loaded);
    CHECK(records[0].targets == std::vector<std::string>{"dupa noop", "dupa other"});
    CHECK(records[1].status == PluginRecord::Status::Refused);
    CHECK(records[1].error.find("duplicate plugin name 'dup'") == 0);
    CHECK_FALSE(l->registry.resolve("host", "dupb", "noop"));
  }
  SUBCASE("target and action") {
    auto l = load_dir(kTestPlugins, {"clash_a", "clash_b"});
    CHECK(l->count == 1);
    auto records = l->registry.records();
    CHECK(records[1].name == "clash-b");
    CHECK(records[1].error.find("duplicate target/action 'shared noop'") == 0);
    CHECK(records[1].error.find("already served by plugin 'clash-a'") != std::string::npos);
    CHECK(l->registry.resolve("host", "shared", "noop")->plugin->name() == "clash-a");
  }
}

TEST_CASE("files others can write, or that others own, are refused before loading") {
  for (int mode : {0664, 0646, 0666}) {
    CAPTURE(mode);
    Loaded l;
    fs::path plugins = stage(l.dir, kTestPlugins, {"noop_a"});
    fs::permissions(plugins / "noop_a.so", fs::perms(mode));
    blade::load_plugins(blade::discover_plugin_files({plugins}), {"test", l.dir / "state"},
                        l.registry);
    auto r = l.registry.records().at(0);
    CHECK(r.status == PluginRecord::Status::Refused);
    CHECK(r.error.find("file is group- or world-writable (mode 0") == 0);
  }
  if (::geteuid() == 0) {
    Loaded l;
    fs::path plugins = stage(l.dir, kTestPlugins, {"noop_a"});
    REQUIRE(::chown((plugins / "noop_a.so").c_str(), 65534, 65534) == 0);
    blade::load_plugins(blade::discover_plugin_files({plugins}), {"test", l.dir / "state"},
                        l.registry);
    CHECK(l.registry.records().at(0).error.find("owned by uid 65534") != std::string::npos);
  } else {
    MESSAGE("SKIP ownership refusal: needs root to chown a file to another user");
  }
}

TEST_CASE("a directory of good and bad plugins: the good ones serve, the bad are recorded") {
  auto l = load_dir(kTestPlugins, {"noop_a", "init_fail", "noop_b", "no_entry", "clash_a",
                                   "clash_b", "spec_invalid", "c_marker"});
  CHECK(l->count == 4);  // noop_a, noop_b, clash_a, c_marker
  CHECK(l->registry.resolve("host", "noopa", "nop"));
  CHECK(l->registry.resolve("host", "noopb", "other"));
  CHECK(l->registry.resolve("host", "cmarker", "touch"));
  CHECK_FALSE(l->registry.resolve("host", "noopa", "missing"));
  CHECK_FALSE(l->registry.resolve("container", "noopa", "noop"));
  std::size_t refused = 0;
  for (const auto &r : l->registry.records())
    refused += r.status == PluginRecord::Status::Refused;
  CHECK(refused == 4);
}

TEST_CASE("WRITES_AHEAD (ABI 1.6) is taken from a plugin declaring minor 0, and read back") {
  auto l = load_dir(kTestPlugins, {"noop_a", "noop_staged"});
  REQUIRE(l->count == 2);
  auto promising = l->registry.resolve("host", "noopa", "noop");
  auto staged = l->registry.resolve("host", "noopstaged", "noop");
  REQUIRE(promising);
  REQUIRE(staged);
  CHECK(promising->plugin->abi() == "1.0");
  CHECK(promising->plugin->writes_ahead());
  CHECK(blade::PluginExecutor(promising->plugin).writes_ahead());
  CHECK_FALSE(staged->plugin->writes_ahead());
  CHECK_FALSE(blade::PluginExecutor(staged->plugin).writes_ahead());
  CHECK(blade::PluginExecutor(staged->plugin).in_process());
}

TEST_CASE("the host checks what plugins return") {
  auto l = load_dir(kTestPlugins, {"bad_restore", "odd_status"});
  REQUIRE(l->count == 2);
  auto bad = l->registry.resolve("host", "badrestore", "noop");
  auto out = bad->plugin->create(request("0000000000000001", "badrestore", "noop", {}));
  CHECK(blade::plugin_status_name(out.status) == "INTERNAL");
  CHECK(out.message == "plugin 'bad-restore' returned invalid JSON for RESTORE");

  auto odd = l->registry.resolve("host", "oddstatus", "noop");
  out = odd->plugin->create(request("0000000000000002", "oddstatus", "noop", {}));
  CHECK(out.status == 9);  // an unknown status reads as INTERNAL
  CHECK(out.message == "plugin 'odd-status' failed with INTERNAL");
}

TEST_CASE("discovery: .so files only, sorted within a dir, dirs in order, missing dirs skipped") {
  TempDir dir;
  fs::create_directories(dir / "a");
  fs::create_directories(dir / "b");
  for (const char *n : {"a/zeta.so", "a/alpha.so", "a/readme.txt", "b/beta.so", "a/sub.so.1"})
    std::ofstream(dir / n) << "x";
  fs::create_directories(dir / "a" / "nested");
  std::ofstream(dir / "a" / "nested" / "deep.so") << "x";
  auto files = blade::discover_plugin_files({dir / "b", dir / "a", dir / "missing"});
  std::vector<fs::path> expected = {dir / "b/beta.so", dir / "a/alpha.so", dir / "a/zeta.so"};
  CHECK(files == expected);
}

TEST_CASE("search dirs: configured, then BLADE_PLUGIN_PATH, then the install dir, no repeats") {
  auto dirs = blade::plugin_search_dirs({"/opt/a", "/opt/b"}, "/env/one::/opt/a:/env/two",
                                        "/usr/lib/blade/plugins");
  std::vector<fs::path> expected = {"/opt/a", "/opt/b", "/env/one", "/env/two",
                                    "/usr/lib/blade/plugins"};
  CHECK(dirs == expected);
  CHECK(blade::plugin_search_dirs({}, nullptr, "/x") == std::vector<fs::path>{"/x"});
}
