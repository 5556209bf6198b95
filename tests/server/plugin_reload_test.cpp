// Plugins come and go without a restart: POST /v1/plugins/reload and
// SIGHUP; a plugin with active experiments is never unloaded under them.
#include <signal.h>

#include <filesystem>
#include <string>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../support/eventually.hpp"
#include "bladed_process.hpp"
#include "experiment_calls.hpp"

namespace fs = std::filesystem;
using blade::test::auth;
using blade::test::BladedProcess;
using blade::test::create;
using blade::test::destroy;
using blade::test::kTestPlugins;
using blade::test::marker_experiment;
using blade::test::with_test_plugins;
using nlohmann::json;

namespace {

json reload(httplib::Client &c) {
  auto res = c.Post("/v1/plugins/reload", auth(), "", "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  return json::parse(res->body)["data"];
}

std::vector<std::string> loaded_names(httplib::Client &c) {
  std::vector<std::string> names;
  auto res = c.Get("/v1/plugins", auth());
  REQUIRE(res);
  const json body = json::parse(res->body);  // the loop must not range over a temporary's member
  for (const auto &p : body["data"])
    if (p["status"] == "loaded") names.push_back(p["name"]);
  return names;
}

void install(const BladedProcess &d, const std::string &file) {
  fs::copy_file(kTestPlugins / file, d.dir / "plugins" / file,
                fs::copy_options::overwrite_existing);
  fs::permissions(d.dir / "plugins" / file, fs::perms(0755));
}

}  // namespace

TEST_CASE("reload loads new plugins, keeps those in use, drops removed ones") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto c = d.client();

  install(d, "noop_a.so");
  auto first = reload(c);
  CHECK(first["loaded"] == json::array({"noop-a"}));
  CHECK(first["unloaded"].empty());
  CHECK(create(c, {{"target", "noopa"}, {"action", "noop"}}).status == 201);

  // c-marker's file goes while its experiment is active: it stays loaded.
  fs::path marker = d.dir / "reload-marker";
  auto created = create(c, marker_experiment(marker));
  REQUIRE(created.status == 201);
  const std::string uid = created.uid();
  fs::remove(d.dir / "plugins" / "c_marker.so");
  auto second = reload(c);
  REQUIRE(second["kept"].size() == 1);
  CHECK(second["kept"][0]["name"] == "c-marker");
  CHECK(second["unloaded"].empty());
  CHECK(loaded_names(c) == std::vector<std::string>{"c-marker", "noop-a"});

  // Its destroy still works, then the next reload lets it go.
  CHECK(destroy(c, uid).status == 200);
  CHECK_FALSE(fs::exists(marker));
  auto third = reload(c);
  CHECK(third["unloaded"] == json::array({"c-marker"}));
  CHECK(loaded_names(c) == std::vector<std::string>{"noop-a"});
  CHECK(create(c, marker_experiment(marker)).status == 404);

  // A bad file is reported as refused; the daemon keeps serving.
  std::ofstream(d.dir / "plugins" / "junk.so") << "not an ELF file";
  fs::permissions(d.dir / "plugins" / "junk.so", fs::perms(0644));
  auto fourth = reload(c);
  REQUIRE(fourth["refused"].size() == 1);
  CHECK(fourth["refused"][0]["path"].get<std::string>().ends_with("junk.so"));
}

TEST_CASE("reload needs the admin role; SIGHUP reloads too") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto c = d.client();
  CHECK(c.Post("/v1/plugins/reload", "", "application/json")->status == 401);

  install(d, "noop_a.so");
  d.process->signal(SIGHUP);
  CHECK(blade::test::eventually([&] { return loaded_names(c).size() == 2; }));
  CHECK(c.Get("/v1/health")->status == 200);  // still serving
}
