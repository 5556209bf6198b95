// The real blade against a real bladed: experiments, specs, output modes,
// exit codes and the one-line errors.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "../server/bladed_process.hpp"
#include "../support/eventually.hpp"
#include "blade_run.hpp"
#include "cli_fixtures.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace blade::test;

TEST_CASE("create, status and destroy round trip with a real fault; aliases and --flag=value") {
  BladedProcess d(with_test_plugins({"c_marker.so", "noop_a.so"}));
  auto blade = runner_for(d);
  const fs::path marker = d.dir / "marker";

  auto created = blade.run({"create", "cmarker", "touch", "--path", marker.string()});
  INFO(created.err);
  REQUIRE(created.code == 0);
  const std::string uid = lines_of(created.out).at(0);
  CHECK(is_uid(uid));
  CHECK(created.err.empty());
  // The fault is real: the plugin's file exists and holds the uid.
  CHECK(read_text(marker).find(uid) != std::string::npos);
  CHECK(experiment(d, uid)["status"] == "running");

  // Piped output is plain: tab-separated, no header.
  auto one = blade.run({"status", uid});
  REQUIRE(one.code == 0);
  auto cells = lines_of(one.out).at(0);
  CHECK(cells.rfind(uid + "\tcmarker\ttouch\trunning\t", 0) == 0);

  auto list = blade.run({"status", "--target", "cmarker", "--status", "running"});
  REQUIRE(list.code == 0);
  CHECK(lines_of(list.out).size() == 1);
  CHECK(list.out.find(uid) != std::string::npos);

  auto destroyed = blade.run({"destroy", uid});
  INFO(destroyed.err);
  REQUIRE(destroyed.code == 0);
  CHECK(destroyed.out == uid + "\tdestroyed\n");
  CHECK_FALSE(fs::exists(marker));
  CHECK(experiment(d, uid)["status"] == "destroyed");

  // The alias `t` resolves through the daemon; --flag=value works too.
  auto aliased = blade.run({"create", "cmarker", "t", "--path=" + marker.string()});
  REQUIRE(aliased.code == 0);
  const std::string uid2 = lines_of(aliased.out).at(0);
  CHECK(experiment(d, uid2)["action"] == "touch");
  CHECK(fs::exists(marker));

  // Filters reach the daemon: nothing of noopa is running.
  auto none = blade.run({"status", "--target", "noopa"});
  CHECK(none.code == 0);
  CHECK(none.out.empty());
  CHECK(blade.run({"destroy", uid2}).code == 0);
  CHECK_FALSE(fs::exists(marker));
}

TEST_CASE("--timeout 1s destroys the fault at its deadline; --async answers at once") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto blade = runner_for(d);
  const fs::path marker = d.dir / "timed";
  auto created =
      blade.run({"create", "cmarker", "touch", "--path", marker.string(), "--timeout", "1s"});
  REQUIRE(created.code == 0);
  const std::string uid = lines_of(created.out).at(0);
  CHECK(experiment(d, uid)["timeout"] == 1);
  CHECK(eventually([&] { return !fs::exists(marker); }, std::chrono::seconds(10)));
  CHECK(eventually([&] { return experiment(d, uid)["status"] == "destroyed"; }));

  auto later = blade.run(
      {"create", "cmarker", "touch", "--path", marker.string(), "--async", "--timeout", "300"});
  REQUIRE(later.code == 0);
  const std::string uid2 = lines_of(later.out).at(0);
  CHECK(eventually([&] { return fs::exists(marker); }));
  CHECK(experiment(d, uid2)["timeout"] == 300);
  CHECK(blade.run({"destroy", uid2}).code == 0);

  // A timeout that is no duration is a usage error; nothing is created.
  auto bad =
      blade.run({"create", "cmarker", "touch", "--path", marker.string(), "--timeout", "soon"});
  CHECK(bad.code == 2);
  CHECK(bad.err.find("--timeout") != std::string::npos);
  CHECK_FALSE(fs::exists(marker));
}

TEST_CASE("create --help is built from the live spec") {
  BladedProcess d(with_test_plugins({"c_marker.so", "noop_a.so"}));
  auto blade = runner_for(d);
  auto c = d.client();
  auto specs = json::parse(c.Get("/v1/specs", auth())->body)["data"];

  auto help = blade.run({"create", "noopa", "nop", "--help"});
  INFO(help.out, help.err);
  REQUIRE(help.code == 0);
  for (const auto &entry : specs) {
    if (entry["target"] != "noopa" || entry["action"] != "noop") continue;
    CHECK(help.out.find(entry["short_desc"].get<std::string>()) != std::string::npos);
    for (const auto &flag : entry["flags"]) {
      CHECK(help.out.find("--" + flag["name"].get<std::string>()) != std::string::npos);
      CHECK(help.out.find(flag["desc"].get<std::string>()) != std::string::npos);
    }
  }
  CHECK(help.out.find("default 50") != std::string::npos);
  CHECK(help.out.find("0..100") != std::string::npos);
  CHECK(help.out.find("Aliases: nop") != std::string::npos);
  CHECK(help.out.find("--timeout") != std::string::npos);

  auto marker_help = blade.run({"create", "cmarker", "touch", "--help"});
  REQUIRE(marker_help.code == 0);
  CHECK(std::regex_search(marker_help.out, std::regex("--path path +.*\\(required")));

  // Without an action: the targets and actions this daemon serves.
  auto targets = blade.run({"create", "--help"});
  REQUIRE(targets.code == 0);
  CHECK(targets.out.find("cmarker") != std::string::npos);
  CHECK(targets.out.find("noopa") != std::string::npos);

  // Unknown (target, action): the daemon's NOT_FOUND, exit 1.
  auto unknown = blade.run({"create", "nosuch", "thing", "--help"});
  CHECK(unknown.code == 1);
  CHECK(unknown.err.find("NOT_FOUND") != std::string::npos);
}

TEST_CASE("--output json prints the API's JSON") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto blade = runner_for(d);
  const fs::path marker = d.dir / "json-marker";
  auto created = blade.run({"create", "cmarker", "touch", "--path", marker.string(), "-o", "json"});
  REQUIRE(created.code == 0);
  auto e = json::parse(created.out);
  CHECK(is_uid(e["uid"].get<std::string>()));
  CHECK(e["status"] == "running");
  CHECK(e["flags"]["path"] == marker.string());
  CHECK(e == experiment(d, e["uid"]));
  CHECK(fs::exists(marker));

  auto list = blade.run({"status", "--output", "json"});
  REQUIRE(list.code == 0);
  auto page = json::parse(list.out);
  CHECK(page["total"] == 1);
  CHECK(page["items"][0]["uid"] == e["uid"]);

  auto plugins = blade.run({"plugins", "-o", "json"});
  REQUIRE(plugins.code == 0);
  CHECK(json::parse(plugins.out).is_array());

  auto destroyed = blade.run({"destroy", e["uid"], "-o", "json"});
  REQUIRE(destroyed.code == 0);
  CHECK(json::parse(destroyed.out)["status"] == "destroyed");
  CHECK_FALSE(fs::exists(marker));

  // A dry run prints the plan and changes nothing.
  auto plan = blade.run({"create", "cmarker", "touch", "--path", marker.string(), "--dry-run"});
  INFO(plan.err);
  REQUIRE(plan.code == 0);
  const auto p = json::parse(plan.out);
  CHECK(p["executor"] == "inprocess:c-marker");
  CHECK(p["flags"]["path"] == marker.string());
  CHECK_FALSE(fs::exists(marker));
}

TEST_CASE("status --after walks one list by the daemon's next cursor") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto blade = runner_for(d);
  std::vector<std::string> created;
  for (const char *name : {"a", "b", "c"}) {
    auto r = blade.run({"create", "cmarker", "touch", "--path", (d.dir / name).string(), "-o",
                        "json"});
    REQUIRE(r.code == 0);
    created.push_back(json::parse(r.out)["uid"]);
  }
  auto first = blade.run({"status", "--all", "--asc", "--limit", "2", "-o", "json"});
  REQUIRE(first.code == 0);
  const auto one = json::parse(first.out);
  REQUIRE(one["next"].is_string());
  auto second = blade.run({"status", "--all", "--asc", "--limit", "2", "--after",
                           one["next"].get<std::string>(), "-o", "json"});
  INFO(second.err);
  REQUIRE(second.code == 0);
  const auto two = json::parse(second.out);
  CHECK(two["next"].is_null());
  std::vector<std::string> walked;
  for (const auto *page : {&one, &two})
    for (const auto &e : (*page)["items"])
      walked.push_back(e["uid"]);
  CHECK(walked == created);
}

TEST_CASE("exit codes: 2 for usage errors, 1 for failed operations, one line on stderr") {
  BladedProcess d(with_test_plugins({"c_marker.so", "noop_a.so"}));
  auto blade = runner_for(d);
  auto one_line = [](const BladeRun &r) {
    INFO(r.err);
    CHECK(lines_of(r.err).size() == 1);
    CHECK(r.err.rfind("blade: ", 0) == 0);
    CHECK(r.err.find("terminate") == std::string::npos);
  };

  // Usage: nothing reaches the daemon.
  for (const auto &args : std::vector<std::vector<std::string>>{
           {"frobnicate"},
           {"create"},
           {"create", "cmarker"},
           {"create", "noopa", "noop", "--no-such-flag", "1"},
           {"create", "noopa", "noop", "--percent"},
           {"status", "--limit", "many"},
           {"status", "--after", "1.1"},
           {"status", "--all", "--after", "1.1", "--offset", "1"},
           {"status", "--status", "sleeping"},
           {"status", "-o", "yaml"},
           {"destroy"},
       }) {
    auto r = blade.run(args);
    INFO(args.at(0), " ", r.err);
    CHECK(r.code == 2);
    one_line(r);
  }
  CHECK(blade.run({}).code == 2);
  CHECK(blade.run({"--help"}).code == 0);

  // A flag failing its spec: the daemon's INVALID_ARGUMENT naming it.
  auto invalid = blade.run({"create", "noopa", "noop", "--percent", "500"});
  CHECK(invalid.code == 1);
  one_line(invalid);
  CHECK(invalid.err.rfind("blade: INVALID_ARGUMENT: flags.percent: ", 0) == 0);

  // A missing required flag.
  auto missing = blade.run({"create", "cmarker", "touch"});
  CHECK(missing.code == 1);
  CHECK(missing.err.find("INVALID_ARGUMENT") != std::string::npos);
  CHECK(missing.err.find("path") != std::string::npos);

  // Unknown uid, unknown target.
  auto gone = blade.run({"destroy", "0000000000000000"});
  CHECK(gone.code == 1);
  one_line(gone);
  CHECK(gone.err.rfind("blade: NOT_FOUND: ", 0) == 0);
  auto nothing = blade.run({"create", "nosuch", "thing", "--x", "1"});
  CHECK(nothing.code == 1);
  CHECK(nothing.err.rfind("blade: NOT_FOUND: ", 0) == 0);

  // The plugin fails the fault: the daemon's error, the failed experiment in JSON.
  const fs::path marker = d.dir / "fails";
  auto failed = blade.run(
      {"create", "cmarker", "touch", "--path", marker.string(), "--fail-on-host", "-o", "json"});
  CHECK(failed.code == 1);
  one_line(failed);
  CHECK(failed.err == "blade: FAILED_PRECONDITION: asked to fail on the host\n");
  CHECK(json::parse(failed.out)["status"] == "failed");
  CHECK_FALSE(fs::exists(marker));

  // The plugin refuses the input before doing anything: an error, no record.
  auto refused =
      blade.run({"create", "cmarker", "touch", "--path", marker.string(), "--fail", "-o", "json"});
  CHECK(refused.code == 1);
  one_line(refused);
  CHECK(refused.err == "blade: INVALID_ARGUMENT: asked to fail\n");
  CHECK(refused.out.empty());
  CHECK_FALSE(fs::exists(marker));

  // prepare/revoke reach the preparation routes; no jvm plugin: a clean error.
  auto prepare = blade.run({"prepare", "jvm", "--pid", "1"});
  CHECK(prepare.code == 1);
  one_line(prepare);
  CHECK(prepare.err.find("blade: NOT_FOUND") == 0);
  auto revoke = blade.run({"revoke", "0000000000000000"});
  CHECK(revoke.code == 1);
  one_line(revoke);
}

TEST_CASE("an unreachable daemon and a wrong token each give one clear line") {
  BladeRunner blade;
  const int port = closed_port();
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  auto r = blade.run({"status", "--endpoint", url});
  CHECK(r.code == 1);
  CHECK(r.out.empty());
  CHECK(r.err == "blade: cannot reach bladed at " + url + ": Connection refused\n");

  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto wrong =
      blade.run({"status"}, {"BLADE_ENDPOINT=" + d.url(), "BLADE_API_TOKEN=not-the-token"});
  CHECK(wrong.code == 1);
  CHECK(lines_of(wrong.err).size() == 1);
  CHECK(wrong.err.rfind("blade: UNAUTHENTICATED: ", 0) == 0);
  CHECK(wrong.err.find("--token") != std::string::npos);
  auto none = blade.run({"status", "-e", d.url()});
  CHECK(none.code == 1);
  CHECK(none.err.rfind("blade: UNAUTHENTICATED: ", 0) == 0);
}

TEST_CASE("token and endpoint from ~/.config/blade/config.yaml; flags beat the environment") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  BladeRunner blade;
  fs::create_directories(blade.home() / ".config" / "blade");
  std::ofstream(blade.home() / ".config" / "blade" / "config.yaml")
      << "endpoint: " << d.url() << "\ntoken: " << kToken << "\n";
  auto r = blade.run({"plugins"});
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK(r.out.find("c-marker") != std::string::npos);

  // The environment beats the file, the command line beats both.
  auto env_wins = blade.run({"plugins"}, {"BLADE_API_TOKEN=wrong"});
  CHECK(env_wins.code == 1);
  auto flag_wins = blade.run({"plugins", "--token", kToken}, {"BLADE_API_TOKEN=wrong"});
  CHECK(flag_wins.code == 0);

  // A config file that is named but absent is a usage error.
  auto missing = blade.run({"plugins", "--config", (blade.home() / "nope.yaml").string()});
  CHECK(missing.code == 2);
}

TEST_CASE("tables on a terminal: headers, the create summary, status details") {
  BladedProcess d(with_test_plugins({"c_marker.so", "init_fail.so"}));
  auto blade = runner_for(d);
  const fs::path marker = d.dir / "tty-marker";
  auto created = blade.run({"create", "cmarker", "touch", "--path", marker.string()}, {}, true);
  REQUIRE(created.code == 0);
  auto lines = lines_of(created.out);
  REQUIRE(lines.size() == 2);
  CHECK(is_uid(lines[0]));
  CHECK(lines[1].find("host cmarker touch: running") == 0);
  CHECK(fs::exists(marker));

  auto list = blade.run({"status"}, {}, true);
  REQUIRE(list.code == 0);
  CHECK(list.out.rfind("UID", 0) == 0);
  CHECK(list.out.find("STATUS") != std::string::npos);
  CHECK(list.out.find(lines[0]) != std::string::npos);

  auto detail = blade.run({"status", lines[0]}, {}, true);
  CHECK(detail.out.find("status:") != std::string::npos);
  CHECK(detail.out.find("running") != std::string::npos);

  // Loaded and refused plugins, the refusal with its reason.
  auto plugins = blade.run({"plugins"}, {}, true);
  REQUIRE(plugins.code == 0);
  CHECK(plugins.out.rfind("NAME", 0) == 0);
  CHECK(plugins.out.find("loaded") != std::string::npos);
  CHECK(plugins.out.find("refused") != std::string::npos);

  auto spec = blade.run({"spec"}, {}, true);
  CHECK(spec.out.find("cmarker") != std::string::npos);
  auto spec_one = blade.run({"spec", "cmarker", "touch"});
  CHECK(spec_one.out.find("--path") != std::string::npos);
  CHECK(blade.run({"destroy", lines[0]}).code == 0);
  CHECK_FALSE(fs::exists(marker));
}

TEST_CASE("status <uid> shows what the destroy reported") {
  BladedProcess d(with_test_plugins({"destroy_report.so"}));
  auto blade = runner_for(d);
  auto created = blade.run({"create", "reporter", "noop", "--dir", d.dir.path().string()});
  INFO(created.err);
  REQUIRE(created.code == 0);
  const std::string uid = lines_of(created.out).at(0);
  auto before = blade.run({"status", uid}, {}, true);
  CHECK(before.out.find("destroy:") == std::string::npos);
  REQUIRE(blade.run({"destroy", uid}).code == 0);
  auto detail = blade.run({"status", uid}, {}, true);
  INFO(detail.out);
  CHECK(detail.out.find("destroy:   {\"blocked\":false,\"had_restore\":true,\"uid\":\"" + uid +
                        "\"}") != std::string::npos);
}

TEST_CASE("an https endpoint: verified with --ca-cert, refused without it, --insecure skips") {
  TempDir certs("blade-cli-certs");
  const std::string cert = (certs / "cert.pem").string(), key = (certs / "key.pem").string();
  ChildProcess openssl(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
       "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert},
      {}, (certs / "openssl.log").string());
  // openssl is installed with the build dependencies (tools/dev/install-deps.sh).
  REQUIRE_MESSAGE(openssl.exit_code(std::chrono::seconds(30)) == 0,
                  read_text(certs / "openssl.log"));
  BladedOptions o = with_test_plugins({"c_marker.so"}, {"--tls-cert", cert, "--tls-key", key});
  o.scheme = "https";
  BladedProcess d(o);
  auto blade = runner_for(d);
  auto verified = blade.run({"plugins", "--ca-cert", cert});
  INFO(verified.err);
  CHECK(verified.code == 0);
  CHECK(verified.out.find("c-marker") != std::string::npos);
  auto unverified = blade.run({"plugins"});
  CHECK(unverified.code == 1);
  CHECK(lines_of(unverified.err).size() == 1);
  CHECK(unverified.err.find("certificate") != std::string::npos);
  CHECK(blade.run({"plugins", "--insecure"}).code == 0);
}
