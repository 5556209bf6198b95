// bladed as a user meets it: a real process on an ephemeral port, spoken to
// over HTTP; and its configuration precedence.
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <thread>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../support/child_process.hpp"
#include "../support/eventually.hpp"
#include "../support/file_text.hpp"
#include "../support/temp_dir.hpp"
#include "bladed_process.hpp"
#include "daemon/config.hpp"

namespace fs = std::filesystem;
using blade::test::ChildProcess;
using blade::test::read_text;
using blade::test::TempDir;
using nlohmann::json;

namespace {

using blade::test::auth;
using blade::test::kBladed;
using blade::test::kToken;
using blade::test::post_json;

// The default daemon of these tests: a good C plugin and a refused one.
struct Daemon : blade::test::BladedProcess {
  explicit Daemon(std::vector<std::string> args = {}, std::vector<std::string> env = {})
      : BladedProcess(options(std::move(args), std::move(env))) {}
  static blade::test::BladedOptions options(std::vector<std::string> args,
                                            std::vector<std::string> env) {
    blade::test::BladedOptions o;
    o.args = std::move(args);
    o.env = std::move(env);
    return o;
  }
};

}  // namespace

TEST_CASE("health needs no token and reports the loaded plugins") {
  Daemon d;
  auto c = d.client();
  auto res = c.Get("/v1/health");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->get_header_value("Content-Type") == "application/json");
  auto body = json::parse(res->body);
  CHECK(body["code"] == "OK");
  CHECK(body["data"]["status"] == "up");
  CHECK(body["data"]["plugins"] == 1);
  CHECK(body["data"]["version"].is_string());
}

TEST_CASE("plugins lists loaded and refused plugins, behind the token") {
  Daemon d;
  auto c = d.client();

  auto missing = c.Get("/v1/plugins");
  REQUIRE(missing);
  CHECK(missing->status == 401);
  CHECK(json::parse(missing->body)["code"] == "UNAUTHENTICATED");

  auto wrong = c.Get("/v1/plugins", {{"X-Api-Token", kToken + "x"}});
  CHECK(wrong->status == 401);
  auto wrong_bearer = c.Get("/v1/plugins", {{"Authorization", "Bearer nope"}});
  CHECK(wrong_bearer->status == 401);

  auto res = c.Get("/v1/plugins", {{"Authorization", "Bearer " + kToken}});
  REQUIRE(res);
  CHECK(res->status == 200);
  auto items = json::parse(res->body)["data"];
  REQUIRE(items.size() == 2);
  CHECK(items[0]["name"] == "c-marker");
  CHECK(items[0]["status"] == "loaded");
  CHECK(items[0]["abi"] == "1.0");
  CHECK(items[0]["targets"] == json::array({"cmarker touch"}));
  CHECK(items[0]["error"] == "");
  CHECK(items[1]["name"] == "init-fail");
  CHECK(items[1]["status"] == "refused");
  CHECK(items[1]["error"] == "init failed (FAILED_PRECONDITION): device not ready");
  CHECK(items[1]["path"].get<std::string>().ends_with("plugins/init_fail.so"));
}

TEST_CASE("unknown routes answer the envelope with NOT_FOUND") {
  Daemon d;
  auto res = d.client().Get("/v1/nothing-here", auth());
  REQUIRE(res);
  CHECK(res->status == 404);
  auto body = json::parse(res->body);
  CHECK(body["code"] == "NOT_FOUND");
  CHECK(body["message"] == "no route GET /v1/nothing-here");
}

TEST_CASE("SIGTERM stops the daemon cleanly") {
  Daemon d;
  d.process->signal(SIGTERM);
  CHECK(d.process->exit_code(std::chrono::seconds(10)) == 0);
}

TEST_CASE("bladed refuses to start without a token, or without auth off loopback") {
  TempDir dir;
  auto state = (dir / "state").string();
  {
    ChildProcess p({kBladed, "--port", "0", "--state-dir", state}, {"BLADE_API_TOKEN="},
                   (dir / "a.log").string());
    CHECK(p.exit_code(std::chrono::seconds(10)) == 2);
    CHECK(read_text(dir / "a.log").find("no API token configured") != std::string::npos);
  }
  {
    ChildProcess p({kBladed, "--port", "0", "--no-auth", "--bind", "0.0.0.0", "--state-dir", state},
                   {"BLADE_API_TOKEN="}, (dir / "b.log").string());
    CHECK(p.exit_code(std::chrono::seconds(10)) == 2);
    CHECK(read_text(dir / "b.log").find("bind address 0.0.0.0 is not loopback") !=
          std::string::npos);
  }
  {
    std::ofstream(dir / "bad.yaml") << "port: 1\nprot: 2\n";
    ChildProcess p({kBladed, "--config", (dir / "bad.yaml").string()}, {},
                   (dir / "c.log").string());
    CHECK(p.exit_code(std::chrono::seconds(10)) == 2);
    CHECK(read_text(dir / "c.log").find("unknown key 'prot'") != std::string::npos);
  }
}

TEST_CASE("a database bladed cannot use stops it at start, naming the file and the reason") {
  TempDir dir;
  fs::create_directories(dir / "state");
  std::ofstream(dir / "state" / "blade.db") << std::string(8192, 'x');  // not SQLite
  ChildProcess p({kBladed, "--port", "0", "--state-dir", (dir / "state").string()},
                 {"BLADE_API_TOKEN=" + kToken}, (dir / "log").string());
  CHECK(p.exit_code(std::chrono::seconds(10)) == 1);
  std::string log = read_text(dir / "log");
  CHECK(log.find((dir / "state" / "blade.db").string()) != std::string::npos);
  CHECK(log.find("bladed listening") == std::string::npos);
  MESSAGE("bladed said: " << log);
}

TEST_CASE("--no-auth on loopback serves without a token") {
  Daemon d({"--no-auth"}, {"BLADE_API_TOKEN="});
  auto res = d.client().Get("/v1/plugins");
  REQUIRE(res);
  CHECK(res->status == 200);
}

namespace {

blade::server::Config parse(std::vector<std::string> args) {
  std::vector<const char *> argv = {"bladed"};
  for (const auto &a : args)
    argv.push_back(a.c_str());
  return blade::server::parse_invocation(static_cast<int>(argv.size()), argv.data()).config;
}

// Sets an environment variable for one scope.
struct EnvVar {
  std::string name;
  EnvVar(std::string n, const std::string &value) : name(std::move(n)) {
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~EnvVar() { ::unsetenv(name.c_str()); }
};

}  // namespace

TEST_CASE("configuration: flags beat environment beat the config file beat defaults") {
  TempDir dir;
  std::ofstream(dir / "blade.yaml") << "port: 7000\nbind: 127.0.0.2\nlog-level: debug\n"
                                       "plugin-dir: [/file/a, /file/b]\ntoken: from-file\n";
  EnvVar config("BLADE_CONFIG", (dir / "blade.yaml").string());

  auto from_file = parse({});
  CHECK(from_file.port == 7000);
  CHECK(from_file.bind == "127.0.0.2");
  CHECK(from_file.log_level == blade::log::Level::Debug);
  CHECK(from_file.plugin_dirs == std::vector<fs::path>{"/file/a", "/file/b"});
  CHECK(from_file.token == "from-file");
  CHECK(from_file.state_dir == "/var/lib/blade");  // default

  EnvVar port("BLADE_PORT", "7100");
  EnvVar dirs("BLADE_PLUGIN_DIR", "/env/a:/env/b");
  auto from_env = parse({});
  CHECK(from_env.port == 7100);
  CHECK(from_env.plugin_dirs == std::vector<fs::path>{"/env/a", "/env/b"});
  CHECK(from_env.bind == "127.0.0.2");

  auto from_flags = parse({"--port", "7200", "--plugin-dir", "/flag"});
  CHECK(from_flags.port == 7200);
  CHECK(from_flags.plugin_dirs == std::vector<fs::path>{"/flag"});

  // The install dir is searched unless a dev run leaves it out (make run),
  // so the build's plugins do not meet installed copies of themselves.
  CHECK_FALSE(from_flags.install_plugin_dir.empty());
  CHECK(parse({"--no-install-plugin-dir"}).install_plugin_dir.empty());
  EnvVar no_install("BLADE_NO_INSTALL_PLUGIN_DIR", "1");
  CHECK(parse({}).install_plugin_dir.empty());
}

TEST_CASE("configuration errors name the option") {
  auto message = [](std::vector<std::string> args) {
    try {
      parse(std::move(args));
    } catch (const std::invalid_argument &e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message({"--port", "70000"}) == "port: 70000 is not in 0..65535");
  CHECK(message({"--bind", "localhost"}) == "bind: 'localhost' is not an IP address");
  CHECK(message({"--log-level", "loud"}) == "log-level: expected debug, info, warn or error");
  CHECK(message({"--log-format", "xml"}) == "log-format: expected text, json or auto");
  CHECK(message({"--port", "abc"}).find("port") != std::string::npos);
  CHECK(message({"--bogus"}).find("bogus") != std::string::npos);
  CHECK(message({"--tls-cert", "/c.pem"}) == "tls-cert, tls-key: give both or neither");
  CHECK(message({"--rate-limit", "-1"}) == "rate-limit: -1 is not in 0..1000000000");
  CHECK(message({"--max-event-streams", "24"}).starts_with("max-event-streams: must be below"));
  CHECK(message({"--read-timeout", "0"}) == "read-timeout: 0 is not in 1..3600");
  CHECK(message({"--max-config-streams", "2000"}) == "max-config-streams: 2000 is not in 0..1024");
  CHECK(message({"--config-stream-keepalive", "0.01"}) ==
        "config-stream-keepalive: 0.01 is not in 0.05..3600");
  CHECK(message({"--config-stream-keepalive", "0.2"}) == "no error");
}

TEST_CASE("experiments over HTTP: create, get, list, destroy, with the fault real on the host") {
  Daemon d;
  auto c = d.client();
  fs::path marker = d.dir / "http-marker";

  auto body = blade::test::marker_experiment(marker);
  body["action"] = "t";  // the alias resolves to the canonical action
  auto created = post_json(c, "/v1/experiments", body);
  REQUIRE(created);
  CHECK(created->status == 201);
  auto x = json::parse(created->body)["data"];
  CHECK(x["status"] == "running");
  CHECK(x["action"] == "touch");
  CHECK(x["executor"] == "inprocess:c-marker");
  CHECK(x["flags"]["path"] == marker.string());
  CHECK(x["deadline"].is_null());
  std::string uid = x["uid"];
  CHECK(read_text(marker) == uid);

  auto got = c.Get(("/v1/experiments/" + uid).c_str(), auth());
  CHECK(got->status == 200);
  CHECK(json::parse(got->body)["data"]["uid"] == uid);

  auto listed = c.Get("/v1/experiments?status=running&target=cmarker&limit=10", auth());
  REQUIRE(listed->status == 200);
  auto page = json::parse(listed->body)["data"];
  CHECK(page["total"] == 1);
  CHECK(page["items"][0]["uid"] == uid);

  auto destroyed = c.Delete(("/v1/experiments/" + uid).c_str(), auth());
  CHECK(destroyed->status == 200);
  CHECK(json::parse(destroyed->body)["data"]["status"] == "destroyed");
  CHECK_FALSE(fs::exists(marker));
  CHECK(c.Delete(("/v1/experiments/" + uid).c_str(), auth())->status == 200);  // idempotent

  auto async = post_json(c, "/v1/experiments",
                         {{"target", "cmarker"},
                          {"action", "touch"},
                          {"flags", {{"path", (d.dir / "a").string()}}},
                          {"async", true},
                          {"timeout", "1s"}});
  CHECK(async->status == 202);
  CHECK(json::parse(async->body)["data"]["status"] == "created");

  auto dry = post_json(c, "/v1/experiments",
                       {{"target", "cmarker"},
                        {"action", "touch"},
                        {"flags", {{"path", (d.dir / "b").string()}}},
                        {"dry_run", true}});
  CHECK(dry->status == 200);
  CHECK(json::parse(dry->body)["data"]["executor"] == "inprocess:c-marker");
  CHECK_FALSE(fs::exists(d.dir / "b"));
}

TEST_CASE("a destroy's report is the experiment's destroy_result, also after recovery") {
  blade::test::BladedProcess d(blade::test::with_test_plugins({"destroy_report.so", "c_marker.so"}));
  auto c = d.client();
  auto get = [](httplib::Client &cl, const std::string &uid) {
    auto got = cl.Get(("/v1/experiments/" + uid).c_str(), auth());
    REQUIRE(got);
    REQUIRE(got->status == 200);
    return json::parse(got->body)["data"];
  };
  const json body = {{"target", "reporter"},
                     {"action", "noop"},
                     {"flags", {{"dir", d.dir.path().string()}}}};
  auto created = post_json(c, "/v1/experiments", body);
  REQUIRE(created);
  REQUIRE(created->status == 201);
  const std::string uid = json::parse(created->body)["data"]["uid"];
  CHECK_FALSE(get(c, uid).contains("destroy_result"));  // none before a destroy

  auto destroyed = c.Delete(("/v1/experiments/" + uid).c_str(), auth());
  REQUIRE(destroyed);
  CHECK(destroyed->status == 200);
  const json want = {{"uid", uid}, {"had_restore", true}, {"blocked", false}};
  CHECK(json::parse(destroyed->body)["data"]["destroy_result"] == want);
  const json x = get(c, uid);
  CHECK(x["destroy_result"] == want);
  CHECK(x["result"] == json::object());  // create's result, untouched
  // Listed with it too.
  auto listed = c.Get("/v1/experiments?target=reporter", auth());
  REQUIRE(listed);
  CHECK(json::parse(listed->body)["data"]["items"][0]["destroy_result"] == want);

  // A plugin that reports nothing: no such field.
  auto marker = post_json(c, "/v1/experiments", blade::test::marker_experiment(d.dir / "m"));
  REQUIRE(marker);
  const std::string muid = json::parse(marker->body)["data"]["uid"];
  REQUIRE(c.Delete(("/v1/experiments/" + muid).c_str(), auth())->status == 200);
  CHECK_FALSE(get(c, muid).contains("destroy_result"));

  // Killed with a fault active: the restart's recovery stores its report.
  auto again = post_json(c, "/v1/experiments", body);
  REQUIRE(again);
  REQUIRE(again->status == 201);
  const std::string kuid = json::parse(again->body)["data"]["uid"];
  d.crash();
  d.restart();
  auto c2 = d.client();
  const json k = get(c2, kuid);
  CHECK(k["status"] == "destroyed");
  CHECK(k["destroy_result"] == json{{"uid", kuid}, {"had_restore", true}, {"blocked", false}});
}

TEST_CASE("experiment routes answer bad requests with the error matrix") {
  Daemon d;
  auto c = d.client();
  auto code_and_field = [](const httplib::Result &r) {
    auto body = json::parse(r->body);
    std::string field =
        body.contains("details") ? body["details"][0]["field"].get<std::string>() : "";
    return std::make_tuple(r->status, body["code"].get<std::string>(), field);
  };
  using T = std::tuple<int, std::string, std::string>;
  CHECK(code_and_field(c.Post("/v1/experiments", auth(), "{not json", "application/json")) ==
        T{400, "INVALID_ARGUMENT", "body"});
  CHECK(code_and_field(c.Post("/v1/experiments", auth(), "{}", "text/plain")) ==
        T{400, "INVALID_ARGUMENT", "Content-Type"});
  CHECK(code_and_field(post_json(c, "/v1/experiments", {{"target", "cmarker"}, {"bogus", 1}})) ==
        T{400, "INVALID_ARGUMENT", "bogus"});
  CHECK(code_and_field(
            post_json(c, "/v1/experiments", {{"target", "cmarker"}, {"action", "touch"}})) ==
        T{400, "INVALID_ARGUMENT", "flags.path"});
  CHECK(code_and_field(post_json(c, "/v1/experiments", {{"target", "nosuch"}, {"action", "x"}})) ==
        T{404, "NOT_FOUND", "action"});
  CHECK(code_and_field(c.Get("/v1/experiments?limit=5000", auth())) ==
        T{400, "INVALID_ARGUMENT", "limit"});
  CHECK(code_and_field(c.Get("/v1/experiments/0123456789abcdef", auth())) ==
        T{404, "NOT_FOUND", "uid"});
  CHECK(c.Post("/v1/experiments", "{}", "application/json")->status == 401);

  auto big =
      c.Post("/v1/experiments", auth(), std::string(2 * 1024 * 1024, ' '), "application/json");
  REQUIRE(big);
  CHECK(big->status == 413);
  CHECK(json::parse(big->body)["code"] == "INVALID_ARGUMENT");

  // The plugin fails on the host: the failed experiment comes back as data.
  auto failed = post_json(c, "/v1/experiments",
                          {{"target", "cmarker"},
                           {"action", "touch"},
                           {"flags", {{"path", (d.dir / "f").string()}, {"fail-on-host", true}}}});
  CHECK(failed->status == 422);
  auto body = json::parse(failed->body);
  CHECK(body["code"] == "FAILED_PRECONDITION");
  CHECK(body["data"]["status"] == "failed");
  CHECK(body["data"]["error"] == "asked to fail on the host");

  // The plugin refuses the input before any step: 400, as the spec's refusal, no data.
  auto refused = post_json(c, "/v1/experiments",
                           {{"target", "cmarker"},
                            {"action", "touch"},
                            {"flags", {{"path", (d.dir / "f").string()}, {"fail", true}}}});
  CHECK(refused->status == 400);
  auto refusal = json::parse(refused->body);
  CHECK(refusal["code"] == "INVALID_ARGUMENT");
  CHECK(refusal["message"] == "asked to fail");
  CHECK((!refusal.contains("data") || refusal["data"].is_null()));

  // A JSON timeout beyond int64 does not wrap negative: a clear 400.
  auto huge = post_json(c, "/v1/experiments",
                        {{"target", "cmarker"},
                         {"action", "touch"},
                         {"timeout", std::numeric_limits<std::uint64_t>::max()},
                         {"flags", {{"path", (d.dir / "h").string()}}}});
  CHECK(huge->status == 400);
  auto huge_body = json::parse(huge->body);
  CHECK(huge_body["details"][0]["field"] == "timeout");
  CHECK(huge_body["details"][0]["description"] == "must be at most 366 days");
  CHECK_FALSE(fs::exists(d.dir / "h"));
}

TEST_CASE("SIGTERM rolls back faults created over HTTP, unless told to keep them") {
  for (bool keep : {false, true}) {
    CAPTURE(keep);
    std::vector<std::string> extra;
    if (keep) extra.push_back("--keep-faults-on-exit");
    Daemon d(extra);
    auto c = d.client();
    fs::path marker = d.dir / "sigterm-marker";
    REQUIRE(post_json(c, "/v1/experiments", blade::test::marker_experiment(marker))->status == 201);
    d.process->signal(SIGTERM);
    CHECK(d.process->exit_code(std::chrono::seconds(10)) == 0);
    CHECK(fs::exists(marker) == keep);
    if (keep) {
      // Kept faults are still rolled back, here by `bladed recover`.
      ChildProcess recover({kBladed, "recover", "--plugin-dir", (d.dir / "plugins").string(),
                            "--state-dir", (d.dir / "state").string()},
                           {}, (d.dir / "recover.log").string());
      CHECK(recover.exit_code(std::chrono::seconds(20)) == 0);
      CHECK_FALSE(fs::exists(marker));
    }
  }
}
