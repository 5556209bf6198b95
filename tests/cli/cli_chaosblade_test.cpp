// The real blade against a real bladed, as a ChaosBlade user meets it:
// ChaosBlade's status names and aliases in filters, active experiments by
// default, --force-remove, `-o chaosblade` for `jq .result` scripts, the SSH
// channel flags refused, "did you mean", each command's own help, help from
// the plugin files when the daemon is down, relative paths, timeouts.
#include <filesystem>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "../server/bladed_process.hpp"
#include "blade_run.hpp"
#include "cli_fixtures.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace blade::test;

namespace {

std::int64_t stored_experiments(BladedProcess &d) {
  auto c = d.client();
  auto res = c.Get("/v1/experiments", auth());
  REQUIRE(res);
  return json::parse(res->body)["data"]["total"].get<std::int64_t>();
}

std::string create_marker(const BladeRunner &blade, const fs::path &marker) {
  auto r = blade.run({"create", "cmarker", "touch", "--path", marker.string()});
  INFO(r.err);
  REQUIRE(r.code == 0);
  return lines_of(r.out).at(0);
}

// The uids of `blade status ...` in plain mode (the first cell of each row).
std::vector<std::string> listed(const BladeRunner &blade, std::vector<std::string> args) {
  args.insert(args.begin(), "status");
  auto r = blade.run(args);
  INFO(r.err);
  REQUIRE(r.code == 0);
  std::vector<std::string> uids;
  for (const auto &line : lines_of(r.out))
    uids.push_back(line.substr(0, line.find('\t')));
  return uids;
}

bool contains(const std::vector<std::string> &v, const std::string &x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

TEST_CASE("status: ChaosBlade's status names, action aliases, active by default, --all") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto blade = runner_for(d);
  const auto done = create_marker(blade, d.dir / "done");
  REQUIRE(blade.run({"destroy", done}).code == 0);
  const auto live = create_marker(blade, d.dir / "live");

  // By default only what is in effect; --all the history too.
  CHECK(listed(blade, {}) == std::vector<std::string>{live});
  auto all = listed(blade, {"--all"});
  CHECK(all.size() == 2);
  CHECK(contains(all, done));
  CHECK(contains(all, live));

  // ChaosBlade's names, in any case, mapped to Blade's.
  for (const std::string name : {"Success", "Running", "SUCCESS", "running"})
    CHECK(listed(blade, {"--status", name}) == std::vector<std::string>{live});
  for (const std::string name : {"Destroyed", "destroyed"})
    CHECK(listed(blade, {"--status", name}) == std::vector<std::string>{done});
  CHECK(listed(blade, {"--status", "Error"}).empty());
  auto bad = blade.run({"status", "--status", "Sleeping"});
  CHECK(bad.code == 2);
  CHECK(bad.err.find("Success") != std::string::npos);

  // The alias `t` finds experiments created as `touch`, as `load` finds `fullload`.
  CHECK(listed(blade, {"--target", "cmarker", "--action", "t"}) == std::vector<std::string>{live});
  CHECK(listed(blade, {"--action", "t", "--all"}).size() == 2);
  CHECK(listed(blade, {"--target", "cmarker", "--action", "touch"}) ==
        std::vector<std::string>{live});

  // ChaosBlade's --limit OFFSET,COUNT pages the list.
  CHECK(listed(blade, {"--all", "--limit", "0,1"}).size() == 1);
  CHECK(listed(blade, {"--all", "--limit", "1,5"}).size() == 1);
  CHECK(listed(blade, {"--all", "--limit", "2,5"}).empty());
  REQUIRE(blade.run({"destroy", live}).code == 0);
  CHECK(listed(blade, {}).empty());
}

TEST_CASE("destroy --force-remove works as on the compat route") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto blade = runner_for(d);
  const fs::path marker = d.dir / "forced";
  const auto uid = create_marker(blade, marker);
  auto r = blade.run({"destroy", uid, "--force-remove"});
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK(experiment(d, uid)["status"] == "destroyed");
  CHECK_FALSE(fs::exists(marker));
}

TEST_CASE("-o chaosblade prints ChaosBlade's Response for create, status and destroy") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto blade = runner_for(d);
  const fs::path marker = d.dir / "cb";
  auto created =
      blade.run({"create", "cmarker", "touch", "--path", marker.string(), "-o", "chaosblade"});
  INFO(created.err);
  REQUIRE(created.code == 0);
  REQUIRE(lines_of(created.out).size() == 1);
  const auto c = json::parse(created.out);
  CHECK(c["code"] == 200);
  CHECK(c["success"] == true);
  CHECK_FALSE(c.contains("error"));
  const std::string uid = c["result"];
  CHECK(is_uid(uid));
  CHECK(fs::exists(marker));

  const auto one = json::parse(blade.run({"status", uid, "-o", "chaosblade"}).out);
  CHECK(one["code"] == 200);
  CHECK(one["result"]["uid"] == uid);
  CHECK(one["result"]["status"] == "running");
  const auto list = json::parse(blade.run({"status", "-o", "chaosblade"}).out);
  REQUIRE(list["result"].is_array());
  CHECK(list["result"].size() == 1);
  CHECK(list["result"][0]["uid"] == uid);

  const auto destroyed = json::parse(blade.run({"destroy", uid, "-o", "chaosblade"}).out);
  CHECK(destroyed["success"] == true);
  CHECK(destroyed["result"]["status"] == "destroyed");
  CHECK_FALSE(fs::exists(marker));

  // Failures: ChaosBlade's codes on stdout, the one-line error on stderr.
  auto missing = blade.run({"status", "0000000000000000", "-o", "chaosblade"});
  CHECK(missing.code == 1);
  const auto m = json::parse(missing.out);
  CHECK(m["code"] == 67002);
  CHECK(m["success"] == false);
  CHECK(m["error"].get<std::string>().find("0000000000000000") != std::string::npos);
  CHECK(missing.err.rfind("blade: NOT_FOUND: ", 0) == 0);

  auto refused = blade.run(
      {"create", "cmarker", "touch", "--path", marker.string(), "--fail", "-o", "chaosblade"});
  CHECK(refused.code == 1);
  const auto r = json::parse(refused.out);
  CHECK(r["code"] == 47000);
  CHECK_FALSE(r.contains("result"));  // refused: nothing was stored

  auto failed = blade.run({"create", "cmarker", "touch", "--path", marker.string(),
                           "--fail-on-host", "-o", "chaosblade"});
  CHECK(failed.code == 1);
  const auto f = json::parse(failed.out);
  CHECK(f["code"] == 63063);
  CHECK(is_uid(f["result"]));  // stored as failed: its uid, as /chaosblade answers
  CHECK(experiment(d, f["result"])["status"] == "failed");

  auto usage = blade.run({"create", "cmarker", "touch", "--bogus", "1", "-o", "chaosblade"});
  CHECK(usage.code == 2);
  CHECK(json::parse(usage.out)["code"] == 49000);
}

TEST_CASE("a plugin's refusal leaves no experiment, as the spec check's does") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto blade = runner_for(d);
  const fs::path marker = d.dir / "refused";
  auto by_plugin = blade.run({"create", "cmarker", "touch", "--path", marker.string(), "--fail"});
  CHECK(by_plugin.code == 1);
  CHECK(by_plugin.err.rfind("blade: INVALID_ARGUMENT: ", 0) == 0);
  auto by_spec =
      blade.run({"create", "cmarker", "touch", "--path", marker.string(), "--hang-ms", "999999"});
  CHECK(by_spec.code == 1);
  CHECK(by_spec.err.rfind("blade: INVALID_ARGUMENT: ", 0) == 0);
  CHECK(stored_experiments(d) == 0);
  CHECK(listed(blade, {"--all"}).empty());
  CHECK_FALSE(fs::exists(marker));
}

TEST_CASE("ChaosBlade's SSH channel flags are refused by name; --channel local is local") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto blade = runner_for(d);
  const fs::path marker = d.dir / "ssh";
  const std::vector<std::vector<std::string>> cases = {
      {"--channel", "ssh"},
      {"--ssh-host", "10.0.0.9"},
      {"--ssh-user", "root"},
      {"--ssh-port", "22"},
      {"--ssh-key", "/root/.ssh/id_rsa"},
      {"--ssh-key-passphrase"},
      {"--blade-release", "https://example.invalid/b.tgz"},
      {"--override-blade-release"},
      {"--install-path", "/opt/chaosblade"}};
  for (const auto &extra : cases) {
    std::vector<std::string> args = {"create", "cmarker", "touch", "--path", marker.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = blade.run(args);
    INFO(extra.at(0), " ", r.err);
    CHECK(r.code == 1);
    CHECK(r.err.find("remote execution over SSH is not supported; run bladed on that host") !=
          std::string::npos);
    CHECK(r.err.find(extra.at(0)) != std::string::npos);
  }
  CHECK(stored_experiments(d) == 0);
  CHECK_FALSE(fs::exists(marker));

  auto local =
      blade.run({"create", "cmarker", "touch", "--path", marker.string(), "--channel", "local"});
  INFO(local.err);
  REQUIRE(local.code == 0);
  CHECK(fs::exists(marker));
  CHECK(blade.run({"destroy", lines_of(local.out).at(0)}).code == 0);
  CHECK_FALSE(fs::exists(marker));
}

TEST_CASE("--timeout: seconds or Go durations; 0 is none") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto blade = runner_for(d);
  for (const auto &[given, seconds] : std::vector<std::pair<std::string, int>>{
           {"300", 300}, {"90s", 90}, {"5m", 300}, {"1h30m", 5400}}) {
    const fs::path marker = d.dir / ("t" + std::to_string(seconds) + given);
    auto r =
        blade.run({"create", "cmarker", "touch", "--path", marker.string(), "--timeout", given});
    INFO(given, " ", r.err);
    REQUIRE(r.code == 0);
    const auto e = experiment(d, lines_of(r.out).at(0));
    CHECK(e["timeout"] == seconds);
    CHECK(blade.run({"destroy", e["uid"]}).code == 0);
  }
  auto none = blade.run(
      {"create", "cmarker", "touch", "--path", (d.dir / "t0").string(), "--timeout", "0"});
  REQUIRE(none.code == 0);
  const auto e = experiment(d, lines_of(none.out).at(0));
  CHECK((!e.contains("timeout") || e["timeout"].is_null()));
  CHECK(blade.run({"destroy", e["uid"]}).code == 0);
  auto sub_second = blade.run(
      {"create", "cmarker", "touch", "--path", (d.dir / "t1").string(), "--timeout", "500ms"});
  CHECK(sub_second.code == 2);
  CHECK(sub_second.err.find("whole number of seconds") != std::string::npos);
}

TEST_CASE("did you mean: commands, targets, actions and flags") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto blade = runner_for(d);
  auto command = blade.run({"stauts"});
  CHECK(command.code == 2);
  CHECK(command.err.find("did you mean 'status'?") != std::string::npos);

  auto target = blade.run({"create", "cmarkr", "touch", "--path", "/tmp/x"});
  CHECK(target.code == 1);
  CHECK(target.err.find("did you mean 'cmarker'?") != std::string::npos);

  auto action = blade.run({"create", "cmarker", "tuoch", "--path", "/tmp/x"});
  CHECK(action.code == 1);
  CHECK(action.err.find("did you mean 'touch'?") != std::string::npos);

  auto flag = blade.run({"create", "cmarker", "touch", "--pth", "/tmp/x"});
  CHECK(flag.code == 2);
  CHECK(flag.err.find("did you mean '--path'?") != std::string::npos);

  // Far from anything: no guess.
  auto far = blade.run({"zzzzzzzz"});
  CHECK(far.code == 2);
  CHECK(far.err.find("did you mean") == std::string::npos);
  CHECK(stored_experiments(d) == 0);
}

TEST_CASE("help: each command's own, and create's from the plugin files when bladed is down") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto blade = runner_for(d);
  for (const auto &args : std::vector<std::vector<std::string>>{
           {"help", "destroy"}, {"destroy", "--help"}, {"help", "d"}}) {
    auto r = blade.run(args);
    CHECK(r.code == 0);
    CHECK(r.out.rfind("Usage: blade destroy", 0) == 0);
    CHECK(r.out.find("--force-remove") != std::string::npos);
    CHECK(r.out.find("Experiments:") == std::string::npos);  // not the global help
  }
  auto status = blade.run({"status", "--help"});
  CHECK(status.out.rfind("Usage: blade status", 0) == 0);
  CHECK(status.out.find("--all") != std::string::npos);
  auto create = blade.run({"help", "create", "cmarker", "touch"});
  CHECK(create.code == 0);
  CHECK(create.out.rfind("blade create cmarker touch", 0) == 0);
  CHECK(blade.run({"help", "stauts"}).err.find("did you mean 'status'?") != std::string::npos);

  // bladed unreachable: the flags come from the plugin files, saying so.
  const fs::path plugins = d.dir / "offline-plugins";
  fs::create_directories(plugins);
  fs::copy_file(fs::path(BLADE_TEST_PLUGIN_DIR) / "c_marker.so", plugins / "c_marker.so");
  BladeRunner offline({"BLADE_ENDPOINT=http://127.0.0.1:" + std::to_string(closed_port()),
                       "BLADE_PLUGIN_DIR=" + plugins.string()});
  auto help = offline.run({"create", "cmarker", "touch", "--help"});
  INFO(help.err);
  CHECK(help.code == 0);
  CHECK(help.out.find("--path") != std::string::npos);
  CHECK(help.out.find("--fail-on-host") != std::string::npos);
  CHECK(help.err.find("cannot reach bladed") != std::string::npos);
  CHECK(help.err.find("not the daemon's live spec") != std::string::npos);
  auto targets = offline.run({"create", "--help"});
  CHECK(targets.code == 0);
  CHECK(targets.out.find("cmarker") != std::string::npos);
  // Only help works offline: a create still needs the daemon.
  auto create_offline = offline.run({"create", "cmarker", "touch", "--path", "/tmp/x"});
  CHECK(create_offline.code == 1);
  CHECK(create_offline.err.rfind("blade: cannot reach bladed", 0) == 0);
}

TEST_CASE("a relative path flag names a file in blade's working directory") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto blade = runner_for(d);
  const fs::path cwd = d.dir / "work";
  fs::create_directories(cwd);
  auto r = blade.run({"create", "cmarker", "touch", "--path", "rel-marker"}, {}, false, cwd);
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto e = experiment(d, lines_of(r.out).at(0));
  CHECK(e["flags"]["path"] == (cwd / "rel-marker").string());
  CHECK(fs::exists(cwd / "rel-marker"));
  CHECK(blade.run({"destroy", e["uid"]}).code == 0);
  CHECK_FALSE(fs::exists(cwd / "rel-marker"));
}
