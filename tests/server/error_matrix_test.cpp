// The rows of the error matrix (docs/http-api.md) that need a plugin (or an executor) to
// fail a certain way: 409, 422, 500 and 503. The client-side rows (400,
// 401, 403, 404, 413, 429) are in bladed_test and api_auth_test.
#include <filesystem>
#include <fstream>
#include <string>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bladed_process.hpp"
#include "experiment_calls.hpp"

namespace fs = std::filesystem;
using blade::test::BladedProcess;
using blade::test::create;
using blade::test::marker_experiment;
using blade::test::with_test_plugins;
using nlohmann::json;

TEST_CASE("409: the plugin finds its fault already in place; 422: it cannot apply it here") {
  BladedProcess d;
  auto c = d.client();
  std::ofstream(d.dir / "taken") << "someone else's";
  auto [status, body] = create(c, marker_experiment(d.dir / "taken"));
  CHECK(status == 409);
  CHECK(body["code"] == "ALREADY_EXISTS");
  CHECK(body["data"]["status"] == "failed");
  CHECK(blade::test::read_text(d.dir / "taken") == "someone else's");  // left alone

  auto [status2, body2] = create(c, marker_experiment(d.dir / "no-such-dir" / "m"));
  CHECK(status2 == 422);
  CHECK(body2["code"] == "FAILED_PRECONDITION");
  CHECK(body2["data"]["status"] == "failed");
  CHECK(body2["data"]["error"] == "No such file or directory");
}

TEST_CASE("500: a plugin answering a status the ABI does not define is a bug, reported plainly") {
  BladedProcess d(with_test_plugins({"odd_status.so"}));
  auto c = d.client();
  auto [status, body] = create(c, {{"target", "oddstatus"}, {"action", "noop"}});
  CHECK(status == 500);
  CHECK(body["code"] == "INTERNAL");
  CHECK(body["data"]["status"] == "failed");
  CHECK(c.Get("/v1/health")->status == 200);  // and the daemon goes on
}

TEST_CASE("503: a synchronous create that outlives --sync-timeout; the job goes on") {
  // The external stand-in's `slow` action sleeps 60 s before answering.
  blade::test::TempDir home;
  fs::create_directories(home / "bin");
  fs::create_directories(home / "yaml");
  fs::copy_file(fs::path(BLADE_STANDIN_DIR) / "chaos_standin", home / "bin" / "chaos_standin");
  fs::copy_file(BLADE_STANDIN_SPEC, home / "yaml" / "chaosblade-standin-spec-1.0.0.yaml");
  BladedProcess d(
      with_test_plugins({}, {"--chaosblade-home", home.path().string(), "--sync-timeout", "1"}));
  auto c = d.client();
  const auto start = std::chrono::steady_clock::now();
  auto [status, body] = create(c, "marker", "slow", {{"path", (d.dir / "pid").string()}});
  CHECK(status == 503);
  CHECK(body["code"] == "UNAVAILABLE");
  CHECK(body["message"].get<std::string>().find("still being created") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  // The experiment exists and is still being created.
  auto list = json::parse(c.Get("/v1/experiments", blade::test::auth())->body)["data"];
  REQUIRE(list["total"] == 1);
  CHECK(list["items"][0]["status"] == "created");
}
