// blade plugin install | list | info | verify | remove against a real
// bladed whose plugin dir they change.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "../server/bladed_process.hpp"
#include "../support/eventually.hpp"
#include "blade_run.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace blade::test;

namespace {

const fs::path kExamplePlugin = fs::path(BLADE_BUILT_PLUGIN_DIR) / "example.so";
const fs::path kCrashPlugin = BLADE_CRASH_PLUGIN;

BladeRunner runner_for(const BladedProcess &d) {
  return BladeRunner({"BLADE_ENDPOINT=" + d.url(), "BLADE_API_TOKEN=" + kToken,
                      "BLADE_PLUGIN_DIR=" + (d.dir / "plugins").string()});
}

json plugins_of(BladedProcess &d) {
  auto c = d.client();
  auto res = c.Get("/v1/plugins", auth());
  REQUIRE(res);
  return json::parse(res->body)["data"];
}

std::string status_of(BladedProcess &d, const std::string &name) {
  for (const auto &p : plugins_of(d))
    if (p["name"] == name) return p["status"];
  return "absent";
}

json manifest_of(const fs::path &dir) {
  auto text = read_text(dir / "blade-manifest.json");
  return text.empty() ? json() : json::parse(text);
}

// File names and contents of a dir, to show a refusal changed nothing.
std::map<std::string, std::string> snapshot(const fs::path &dir) {
  std::map<std::string, std::string> out;
  for (const auto &e : fs::directory_iterator(dir))
    out[e.path().filename().string()] = read_text(e.path());
  return out;
}

std::string sha256_of(const fs::path &file) {
  // The reference value comes from a different implementation than blade's.
  TempDir tmp("blade-sha");
  ChildProcess p({"/usr/bin/sha256sum", file.string()}, {}, (tmp / "out").string());
  REQUIRE(p.exit_code(std::chrono::seconds(10)) == 0);
  return read_text(tmp / "out").substr(0, 64);
}

}  // namespace

TEST_CASE("install the SDK example plugin, then use its target through the CLI") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto blade = runner_for(d);
  const fs::path dir = d.dir / "plugins";

  auto r = blade.run({"plugin", "install", kExamplePlugin.string()});
  INFO(r.out, r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("installed example") == 0);
  CHECK(r.out.find("bladed loaded example") != std::string::npos);

  const fs::path installed = dir / "example.so";
  struct stat st {};
  REQUIRE(::stat(installed.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0644);
  CHECK(st.st_uid == 0);
  CHECK(st.st_gid == 0);
  CHECK(read_text(installed) == read_text(kExamplePlugin));

  auto manifest = manifest_of(dir);
  REQUIRE(manifest["plugins"].size() == 1);
  auto entry = manifest["plugins"][0];
  CHECK(entry["name"] == "example");
  CHECK(entry["file"] == "example.so");
  CHECK(entry["sha256"] == sha256_of(kExamplePlugin));
  CHECK(entry["size"] == fs::file_size(kExamplePlugin));
  CHECK(entry["abi"].get<std::string>().rfind("1.", 0) == 0);
  CHECK_FALSE(entry["version"].get<std::string>().empty());
  CHECK_FALSE(entry["installed_at"].get<std::string>().empty());
  // No temporary file is left next to it.
  for (const auto &e : fs::directory_iterator(dir))
    CHECK(e.path().filename().string().find(".tmp") == std::string::npos);

  CHECK(status_of(d, "example") == "loaded");
  const fs::path marker = d.dir / "example-marker";
  auto created =
      blade.run({"create", "example", "marker", "--path", marker.string(), "--content", "hi"});
  INFO(created.err);
  REQUIRE(created.code == 0);
  CHECK(read_text(marker) == "hi");
  const std::string uid = lines_of(created.out).at(0);
  CHECK(blade.run({"destroy", uid}).code == 0);
  CHECK_FALSE(fs::exists(marker));

  auto list = blade.run({"plugin", "list"});
  CHECK(list.code == 0);
  CHECK(list.out.find("example\t") == 0);
  CHECK(list.out.find("c_marker.so") != std::string::npos);  // not installed by blade
  auto info = blade.run({"plugin", "info", "example", "-o", "json"});
  REQUIRE(info.code == 0);
  auto info_json = json::parse(info.out);
  CHECK(info_json["daemon"]["status"] == "loaded");
  CHECK(info_json["sha256"] == entry["sha256"]);
  auto verify = blade.run({"plugin", "verify"});
  CHECK(verify.code == 0);
  CHECK(verify.out.find("ok      example") == 0);

  // Installing it again is an upgrade in place, not a clash with itself.
  CHECK(blade.run({"plugin", "install", kExamplePlugin.string()}).code == 0);
  CHECK(manifest_of(dir)["plugins"].size() == 1);
}

TEST_CASE("install refuses a wrong ABI, a non-ELF file, a crashing plugin and a clash") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto blade = runner_for(d);
  const fs::path dir = d.dir / "plugins";

  auto first = blade.run({"plugin", "install", (kTestPlugins / "clash_a.so").string()});
  INFO(first.err);
  REQUIRE(first.code == 0);
  CHECK(status_of(d, "clash-a") == "loaded");
  const auto before = snapshot(dir);

  auto abi = blade.run({"plugin", "install", (kTestPlugins / "abi_major2.so").string()});
  CHECK(abi.code == 1);
  CHECK(lines_of(abi.err).size() == 1);
  CHECK(abi.err.rfind("blade: plugin refused: ", 0) == 0);
  CHECK(abi.err.find("ABI") != std::string::npos);

  TempDir tmp("blade-not-elf");
  std::ofstream(tmp / "text.so") << "#!/bin/sh\necho this is not a plugin\n";
  auto text = blade.run({"plugin", "install", (tmp / "text.so").string()});
  CHECK(text.code == 1);
  CHECK(text.err.find("not an ELF") != std::string::npos);

  auto crash = blade.run({"plugin", "install", kCrashPlugin.string()});
  CHECK(crash.code == 1);
  CHECK(lines_of(crash.err).size() == 1);
  CHECK(crash.err.find("crashed while loading (signal 6, SIGABRT)") != std::string::npos);

  auto clash = blade.run({"plugin", "install", (kTestPlugins / "clash_b.so").string()});
  CHECK(clash.code == 1);
  CHECK(lines_of(clash.err).size() == 1);
  CHECK(clash.err.find("already served by plugin 'clash-a'") != std::string::npos);

  auto missing = blade.run({"plugin", "install", (tmp / "absent.so").string()});
  CHECK(missing.code == 1);

  // Nothing was copied, the manifest is as it was, the daemon unchanged.
  CHECK(snapshot(dir) == before);
  CHECK(status_of(d, "clash-b") == "absent");
  CHECK(status_of(d, "abi-major2") == "absent");
}

TEST_CASE("install into a second dir refuses a target the daemon already serves") {
  BladedProcess d(with_test_plugins({"c_marker.so", "clash_a.so"}));
  auto blade = runner_for(d);
  TempDir other("blade-other-dir");
  auto clash = blade.run({"plugin", "install", (kTestPlugins / "clash_b.so").string(),
                          "--plugin-dir", other.path().string()});
  CHECK(clash.code == 1);
  CHECK(clash.err.find("in bladed") != std::string::npos);
  CHECK_FALSE(fs::exists(other / "clash-b.so"));
}

TEST_CASE("verify detects a modified .so and one whose ABI no longer passes") {
  BladedProcess d(with_test_plugins({}));
  auto blade = runner_for(d);
  const fs::path dir = d.dir / "plugins";
  REQUIRE(blade.run({"plugin", "install", kExamplePlugin.string()}).code == 0);
  REQUIRE(blade.run({"plugin", "install", (kTestPlugins / "noop_b.so").string()}).code == 0);
  CHECK(blade.run({"plugin", "verify"}).code == 0);

  // One byte more: the sha256 no longer matches.
  std::ofstream(dir / "example.so", std::ios::app | std::ios::binary) << '\0';
  auto modified = blade.run({"plugin", "verify"});
  CHECK(modified.code == 1);
  CHECK(modified.out.find("FAILED  example: ") != std::string::npos);
  CHECK(modified.out.find("was modified") != std::string::npos);
  CHECK(modified.out.find("ok      noop-b") != std::string::npos);
  CHECK(blade.run({"plugin", "verify", "noop-b"}).code == 0);
  CHECK(blade.run({"plugin", "verify", "example"}).code == 1);

  // The file's bytes match the manifest, but they no longer pass the
  // host's ABI check (as after a host upgrade).
  fs::copy_file(kTestPlugins / "abi_major2.so", dir / "noop-b.so",
                fs::copy_options::overwrite_existing);
  auto manifest = manifest_of(dir);
  for (auto &p : manifest["plugins"]) {
    if (p["name"] != "noop-b") continue;
    p["sha256"] = sha256_of(dir / "noop-b.so");
    p["size"] = fs::file_size(dir / "noop-b.so");
  }
  std::ofstream(dir / "blade-manifest.json") << manifest.dump(2);
  auto abi = blade.run({"plugin", "verify", "noop-b"});
  CHECK(abi.code == 1);
  CHECK(abi.out.find("no longer loads") != std::string::npos);
  CHECK(abi.out.find("ABI") != std::string::npos);

  CHECK(blade.run({"plugin", "verify", "nosuch"}).code == 1);
}

TEST_CASE("remove refuses while the plugin has active experiments; --force destroys them first") {
  BladedProcess d(with_test_plugins({}));
  auto blade = runner_for(d);
  const fs::path dir = d.dir / "plugins";
  REQUIRE(blade.run({"plugin", "install", kExamplePlugin.string()}).code == 0);
  const fs::path marker = d.dir / "held";
  auto created = blade.run({"create", "example", "marker", "--path", marker.string()});
  REQUIRE(created.code == 0);
  const std::string uid = lines_of(created.out).at(0);

  auto refused = blade.run({"plugin", "remove", "example"});
  CHECK(refused.code == 1);
  CHECK(lines_of(refused.err).size() == 1);
  CHECK(refused.err.find("active experiment") != std::string::npos);
  CHECK(refused.err.find(uid) != std::string::npos);
  CHECK(fs::exists(dir / "example.so"));
  CHECK(fs::exists(marker));
  CHECK(status_of(d, "example") == "loaded");

  auto forced = blade.run({"plugin", "remove", "example", "--force"});
  INFO(forced.out, forced.err);
  CHECK(forced.code == 0);
  CHECK(forced.out.find("destroyed " + uid) != std::string::npos);
  CHECK_FALSE(fs::exists(marker));
  CHECK_FALSE(fs::exists(dir / "example.so"));
  CHECK(manifest_of(dir)["plugins"].empty());
  CHECK(eventually([&] { return status_of(d, "example") == "absent"; }));

  CHECK(blade.run({"plugin", "remove", "example"}).code == 1);
  CHECK(blade.run({"plugin", "bogus"}).code == 2);
}

TEST_CASE("install with no daemon running: installed, with a note, exit 0") {
  TempDir dir("blade-plugins-offline");
  BladeRunner blade({"BLADE_ENDPOINT=http://127.0.0.1:1", "BLADE_API_TOKEN=" + kToken});
  auto r = blade.run(
      {"plugin", "install", kExamplePlugin.string(), "--plugin-dir", dir.path().string()});
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK(fs::exists(dir / "example.so"));
  CHECK(r.err.rfind("blade: note: cannot reach bladed at http://127.0.0.1:1", 0) == 0);
  CHECK(lines_of(r.err).size() == 1);

  // Removing without a daemon to ask about active experiments needs --force.
  CHECK(blade.run({"plugin", "remove", "example", "--plugin-dir", dir.path().string()}).code == 1);
  CHECK(fs::exists(dir / "example.so"));
  CHECK(blade.run({"plugin", "remove", "example", "--force", "--plugin-dir", dir.path().string()})
            .code == 0);
  CHECK_FALSE(fs::exists(dir / "example.so"));
}
