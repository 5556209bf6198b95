// GET /v1/specs names the executor create would run, under either exec
// mode: with --exec-mode external an action that both a plugin and a
// chaosblade-exec spec file serve lists the external program, and a dry run
// of it reports the same executor.
#include <filesystem>
#include <string>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../support/shared_external_spec.hpp"
#include "bladed_process.hpp"
#include "experiment_calls.hpp"

namespace fs = std::filesystem;
using blade::test::auth;
using blade::test::BladedProcess;
using blade::test::create;
using blade::test::with_test_plugins;
using blade::test::write_shared_external_spec;
using nlohmann::json;

namespace {

// A ChaosBlade home with the stand-in binary and the shared spec file.
struct Home {
  blade::test::TempDir dir{"blade-specs-home"};
  Home() {
    fs::create_directories(dir / "bin");
    fs::copy_file(fs::path(BLADE_STANDIN_DIR) / "chaos_standin", dir / "bin" / "chaos_standin");
    write_shared_external_spec(dir.path());
  }
};

// The executor GET /v1/specs lists for (target, action); "" if unlisted,
// "several" if listed more than once.
std::string listed_executor(httplib::Client &c, const std::string &target,
                            const std::string &action) {
  auto r = c.Get("/v1/specs", auth());
  REQUIRE(r);
  REQUIRE(r->status == 200);
  std::string found;
  const json body = json::parse(r->body);
  for (const auto &e : body["data"]) {
    if (e["target"] != target || e["action"] != action) continue;
    if (!found.empty()) return "several";
    found = e["executor"].get<std::string>();
  }
  return found;
}

// The executor a dry run of (target, action) would use.
std::string dry_run_executor(httplib::Client &c, const std::string &target,
                             const std::string &action, const fs::path &path) {
  auto answer = create(c, target, action, {{"path", path.string()}}, true);
  REQUIRE(answer.status == 200);
  return answer.body["data"]["executor"].get<std::string>();
}

}  // namespace

TEST_CASE("/v1/specs, default exec mode: the plugin serves the shared action") {
  Home home;
  BladedProcess d(with_test_plugins({"c_marker.so"},
                                    {"--chaosblade-home", home.dir.path().string()}));
  auto c = d.client();
  CHECK(listed_executor(c, "cmarker", "touch") == "inprocess:c-marker");
  CHECK(listed_executor(c, "marker", "touch") == "external:chaos_standin");
  CHECK(dry_run_executor(c, "cmarker", "touch", d.dir / "m") == "inprocess:c-marker");
  CHECK(dry_run_executor(c, "marker", "touch", d.dir / "m") == "external:chaos_standin");
}

TEST_CASE("/v1/specs, --exec-mode external: the shared action lists the external program") {
  Home home;
  BladedProcess d(with_test_plugins(
      {"c_marker.so"},
      {"--chaosblade-home", home.dir.path().string(), "--exec-mode", "external"}));
  auto c = d.client();
  CHECK(listed_executor(c, "cmarker", "touch") == "external:chaos_standin");
  CHECK(listed_executor(c, "marker", "touch") == "external:chaos_standin");
  // Listed as create routes it.
  CHECK(dry_run_executor(c, "cmarker", "touch", d.dir / "m") == "external:chaos_standin");
  // The entry carries the external spec, the one create checks flags against.
  auto r = c.Get("/v1/specs", auth());
  REQUIRE(r);
  const json body = json::parse(r->body);
  for (const auto &e : body["data"])
    if (e["target"] == "cmarker") CHECK(e["short_desc"] == "external touch");
}
