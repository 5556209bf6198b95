// The compatibility routes against a real bladed: ChaosBlade's
// /chaosblade?cmd= and the /api/v1 service API, checked by their real effect (the
// C marker plugin's file), their Response JSON, and that a command line is
// never handed to a shell (CVE-2023-47105).
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../support/eventually.hpp"
#include "../support/file_text.hpp"
#include "bladed_process.hpp"

namespace fs = std::filesystem;
using blade::test::auth;
using blade::test::BladedOptions;
using blade::test::BladedProcess;
using blade::test::kToken;
using blade::test::post_json;
using blade::test::read_text;
using nlohmann::json;

namespace {

const std::string kViewerToken = "viewer-token-0123456789abcdef0123";
const std::string kSlowToken = "slow-token-0123456789abcdef012345";

// A daemon with the marker plugin, the default admin token, a viewer token
// and a token allowed one request per second.
struct Daemon : BladedProcess {
  Daemon() : BladedProcess(options()) {}

  static BladedOptions options() {
    static blade::test::TempDir config_dir{"compat-config"};
    const fs::path file = config_dir / "blade.yaml";
    std::ofstream(file) << "tokens:\n"
                        << "  - {name: viewer, token: \"" << kViewerToken << "\", role: viewer}\n"
                        << "  - {name: slow, token: \"" << kSlowToken
                        << "\", role: viewer, rate-limit: 1}\n";
    BladedOptions o;
    o.args = {"--config", file.string()};
    o.plugins = {"c_marker.so"};
    return o;
  }

  // GET /chaosblade?cmd=<line>: the HTTP status and the body.
  std::pair<int, json> blade(const std::string &line, const std::string &token = kToken) {
    auto c = client();
    auto res = c.Get("/chaosblade", httplib::Params{{"cmd", line}},
                     httplib::Headers{{"X-Api-Token", token}});
    REQUIRE(res);
    return {res->status, json::parse(res->body)};
  }

  // Every experiment the daemon has, whatever its status.
  std::int64_t experiments_total() {
    auto c = client();
    auto res = c.Get("/v1/experiments", auth());
    REQUIRE(res);
    REQUIRE(res->status == 200);
    return json::parse(res->body)["data"]["total"].get<std::int64_t>();
  }

  json audit() {
    auto c = client();
    auto res = c.Get("/v1/audit?limit=200", auth());
    REQUIRE(res);
    REQUIRE(res->status == 200);
    return json::parse(res->body)["data"]["items"];
  }
};

bool is_uid(const json &value) {
  if (!value.is_string()) return false;
  const auto text = value.get<std::string>();
  return text.size() == 16 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// The cmd an audit line records ("" if it records none).
std::string audited_cmd(const json &entry) {
  const json query = entry.value("params", json::object()).value("query", json::object());
  return query.value("cmd", "");
}

// The Response shape of a failure: only these keys, an integer code.
void check_failure_shape(const json &body, int code) {
  CHECK(body["code"] == code);
  CHECK(body["success"] == false);
  CHECK(body["error"].is_string());
  CHECK_FALSE(body["error"].get<std::string>().empty());
  for (const auto &[key, value] : body.items())
    CHECK((key == "code" || key == "success" || key == "error" || key == "result"));
}

}  // namespace

TEST_CASE("/chaosblade create, status and destroy act on the host and answer ChaosBlade's shape") {
  Daemon d;
  const fs::path marker = d.dir / "marker";

  auto [status, created] = d.blade("create cmarker touch --path " + marker.string());
  CHECK(status == 200);
  CHECK(created["code"] == 200);
  CHECK(created["success"] == true);
  CHECK_FALSE(created.contains("error"));
  REQUIRE(is_uid(created["result"]));
  const std::string uid = created["result"];
  CHECK(read_text(marker) == uid);  // the plugin ran: the file holds the uid

  auto [s1, one] = d.blade("status --uid " + uid);
  CHECK(s1 == 200);
  CHECK(one["success"] == true);
  CHECK(one["result"]["uid"] == uid);
  CHECK(one["result"]["status"] == "running");
  CHECK(one["result"]["target"] == "cmarker");
  CHECK(d.blade("blade status " + uid).second["result"]["uid"] == uid);

  // Lists take ChaosBlade's status names as well as ours.
  auto [s2, list] = d.blade("status --type create --target cmarker --status Success");
  CHECK(s2 == 200);
  REQUIRE(list["result"].is_array());
  REQUIRE(list["result"].size() == 1);
  CHECK(list["result"][0]["uid"] == uid);
  CHECK(d.blade("status --status Destroyed").second["result"] == json::array());

  auto [s3, destroyed] = d.blade("destroy " + uid);
  CHECK(s3 == 200);
  CHECK(destroyed["code"] == 200);
  CHECK(destroyed["success"] == true);
  CHECK(destroyed["result"]["uid"] == uid);
  CHECK(destroyed["result"]["status"] == "destroyed");
  CHECK_FALSE(fs::exists(marker));
  CHECK(d.blade("status " + uid).second["result"]["status"] == "destroyed");
}

TEST_CASE("/chaosblade takes aliases, quoted values and a form body on POST") {
  Daemon d;
  const fs::path marker = d.dir / "with space";
  auto c = d.client();
  auto res = c.Post("/chaosblade", auth(),
                    httplib::Params{{"cmd", "blade c cmarker t --path '" + marker.string() + "'"}});
  REQUIRE(res);
  CHECK(res->status == 200);
  auto body = json::parse(res->body);
  CHECK(body["success"] == true);
  REQUIRE(is_uid(body["result"]));
  CHECK(read_text(marker) == body["result"].get<std::string>());

  auto status = d.blade("status " + body["result"].get<std::string>());
  CHECK(status.second["result"]["action"] == "touch");  // the alias resolved
  // A status filter by the alias finds it too (rows store the canonical name).
  auto by_alias = d.blade("status --target cmarker --action t");
  REQUIRE(by_alias.second["result"].is_array());
  CHECK(by_alias.second["result"].size() == 1);
  if (by_alias.second["result"].size() == 1)
    CHECK(by_alias.second["result"][0]["uid"] == body["result"]);

  // cmd twice (query and body) is refused: what is audited is what runs.
  auto twice = c.Post(("/chaosblade?cmd=version"), auth(), httplib::Params{{"cmd", "version"}});
  REQUIRE(twice);
  check_failure_shape(json::parse(twice->body), 49000);

  // --dry-run answers the plan and changes nothing; --async answers the uid
  // at once; --timeout is the daemon's, kept on the experiment.
  const fs::path later = d.dir / "later";
  auto plan = d.blade("create cmarker touch --dry-run --path " + later.string());
  CHECK(plan.second["success"] == true);
  CHECK(plan.second["result"].is_object());
  CHECK_FALSE(fs::exists(later));
  CHECK(d.experiments_total() == 1);
  auto async = d.blade("create cmarker touch --async --timeout 5m --path " + later.string());
  CHECK(async.second["success"] == true);
  REQUIRE(is_uid(async.second["result"]));
  CHECK(blade::test::eventually([&] { return fs::exists(later); }));
  auto timed = d.blade("status " + async.second["result"].get<std::string>()).second["result"];
  CHECK(timed["timeout"] == 300);

  auto version = d.blade("version");
  CHECK(version.second["success"] == true);
  CHECK(version.second["result"]["version"].is_string());
}

TEST_CASE("/chaosblade reports failures in its shape with ChaosBlade's codes") {
  Daemon d;
  const fs::path marker = d.dir / "marker";

  // The plugin fails on the host: the experiment exists, failed, and its uid comes back.
  auto [status, failed] = d.blade("create cmarker touch --fail-on-host --path " + marker.string());
  CHECK(status == 200);
  check_failure_shape(failed, 63063);
  CHECK(failed["error"] == "asked to fail on the host");
  REQUIRE(is_uid(failed["result"]));
  CHECK(d.blade("status " + failed["result"].get<std::string>()).second["result"]["status"] ==
        "failed");
  // The plugin refuses the input before any step: 47000, nothing stored.
  const auto stored = d.experiments_total();
  auto refused = d.blade("create cmarker touch --fail --path " + marker.string()).second;
  check_failure_shape(refused, 47000);
  CHECK(refused["error"] == "asked to fail");
  CHECK_FALSE(refused.contains("result"));
  CHECK(d.experiments_total() == stored);
  // ChaosBlade's SSH channel: parsed (switches too), refused by name.
  for (const std::string flags : {"--channel ssh --ssh-host 10.0.0.9", "--ssh-key-passphrase",
                                  "--override-blade-release", "--install-path /opt/chaosblade"}) {
    auto ssh = d.blade("create cmarker touch --path " + marker.string() + " " + flags).second;
    CAPTURE(flags);
    check_failure_shape(ssh, 47000);
    CHECK(ssh["error"].get<std::string>().find("remote execution over SSH is not supported") !=
          std::string::npos);
  }
  CHECK(d.experiments_total() == stored);

  check_failure_shape(d.blade("create cmarker touch").second, 45000);  // --path required
  check_failure_shape(d.blade("create cmarker touch --path relative").second, 47000);
  check_failure_shape(d.blade("create cmarker touch --path /x --colour red").second, 46000);
  check_failure_shape(d.blade("create cpu fullload --cpu-percent 60").second, 44000);
  check_failure_shape(d.blade("destroy 0000000000000000").second, 67002);
  check_failure_shape(d.blade("status --uid 0000000000000000").second, 67002);
  check_failure_shape(d.blade("status --limit 0").second, 47000);
  check_failure_shape(d.blade("prepare jvm --pid 1").second, 44000);
  check_failure_shape(d.blade("bogus").second, 49000);
  check_failure_shape(d.blade("create 'cmarker").second, 49000);

  auto c = d.client();
  auto no_cmd = c.Get("/chaosblade", auth());
  REQUIRE(no_cmd);
  CHECK(no_cmd->status == 200);
  check_failure_shape(json::parse(no_cmd->body), 49000);
  CHECK(d.experiments_total() == 1);  // only the create the plugin refused
}

TEST_CASE("/chaosblade never runs a shell: metacharacters are refused or kept literal") {
  Daemon d;
  const fs::path a = d.dir / "A";
  const fs::path b = d.dir / "B";
  const std::string touch_b = "touch " + b.string();
  const std::vector<std::string> attacks = {
      "create cmarker touch --path " + a.string() + "; " + touch_b,
      "create cmarker touch --path " + a.string() + ";" + touch_b,
      "create cmarker touch --path $(" + touch_b + ")",
      "create cmarker touch --path `" + touch_b + "`",
      "create cmarker touch --path " + a.string() + " | " + touch_b,
      "create cmarker touch --path " + a.string() + " && " + touch_b,
      "create cmarker touch --path " + a.string() + " || " + touch_b,
      "create cmarker touch --path " + a.string() + " > " + b.string(),
      "create cmarker touch --path " + a.string() + "\n" + touch_b,
      "status; " + touch_b,
      "status $(" + touch_b + ")",
      "version && " + touch_b,
      "$(" + touch_b + ")",
      "`" + touch_b + "`",
      touch_b,
  };
  auto c = d.client();
  for (const auto &line : attacks) {
    CAPTURE(line);
    auto [status, body] = d.blade(line);
    CHECK(status == 200);
    CHECK(body["success"] == false);
    CHECK(body["code"] != 200);
    CHECK(body["code"].is_number_integer());
    CHECK_FALSE(body["error"].get<std::string>().empty());
    // The same over POST, in the form body.
    auto res = c.Post("/chaosblade", auth(), httplib::Params{{"cmd", line}});
    REQUIRE(res);
    CHECK(json::parse(res->body)["success"] == false);
  }
  CHECK(d.blade(attacks[0]).second["error"] == "cmd: unexpected word 'touch'");

  // Quoted, the characters are simply part of the value: a file with that name.
  const fs::path literal = d.dir / ("A;" + touch_b.substr(0, 5) + "$(id)`id`|&>B");
  auto [status, body] = d.blade("create cmarker touch --path '" + literal.string() + "'");
  CHECK(body["success"] == true);
  CHECK(fs::exists(literal));

  // Give a shell every chance to have run before looking.
  CHECK_FALSE(
      blade::test::eventually([&] { return fs::exists(b); }, std::chrono::milliseconds(300)));
  CHECK_FALSE(fs::exists(a));
  CHECK(d.experiments_total() == 1);  // only the intended one

  // The attempts are in the audit log, with the line as sent.
  int audited = 0;
  for (const auto &entry : d.audit()) {
    if (entry["subject"] == "GET /chaosblade" && audited_cmd(entry) == attacks[2]) {
      CHECK(entry["outcome"] == "200 INVALID_ARGUMENT");
      ++audited;
    }
  }
  CHECK(audited == 1);
}

TEST_CASE("/chaosblade sits behind the same tokens and roles, answering in its shape") {
  Daemon d;
  const fs::path marker = d.dir / "marker";
  auto c = d.client();

  auto none = c.Get("/chaosblade", httplib::Params{{"cmd", "status"}}, httplib::Headers{});
  REQUIRE(none);
  CHECK(none->status == 401);
  check_failure_shape(json::parse(none->body), 43000);

  auto wrong = d.blade("status", "not-a-token");
  CHECK(wrong.first == 401);
  check_failure_shape(wrong.second, 43000);

  // A viewer reads, but may not create: nothing happens, and the refusal is audited.
  auto read = d.blade("status", kViewerToken);
  CHECK(read.first == 200);
  CHECK(read.second["success"] == true);
  CHECK(read.second["result"].is_array());

  const std::string create = "create cmarker touch --path " + marker.string();
  auto refused = d.blade(create, kViewerToken);
  CHECK(refused.first == 403);
  check_failure_shape(refused.second, 43000);
  CHECK(d.blade("destroy 0000000000000000", kViewerToken).first == 403);
  CHECK_FALSE(fs::exists(marker));
  CHECK(d.experiments_total() == 0);
  bool audited = false;
  for (const auto &entry : d.audit()) {
    if (entry["actor"] == "viewer" && audited_cmd(entry) == create) {
      CHECK(entry["outcome"] == "403 PERMISSION_DENIED");
      audited = true;
    }
  }
  CHECK(audited);

  // Over its rate, a token is refused with 429, still in the Response shape.
  int limited = 0;
  for (int i = 0; i < 6; ++i) {
    auto [status, body] = d.blade("status", kSlowToken);
    if (status == 429) {
      check_failure_shape(body, 54000);
      ++limited;
    }
  }
  CHECK(limited > 0);
}

TEST_CASE("/api/v1: create, status by uid and by filter, destroy") {
  Daemon d;
  const fs::path marker = d.dir / "marker";
  auto c = d.client();

  json body = blade::test::marker_experiment(marker);
  body["action"] = "t";  // an action's alias, as chaosblade's clients give
  auto res = post_json(c, "/api/v1/experiments", body);
  REQUIRE(res);
  CHECK(res->status == 201);
  auto created = json::parse(res->body);
  CHECK(created["code"] == 200);
  CHECK(created["success"] == true);
  REQUIRE(is_uid(created["result"]["uid"]));
  const std::string uid = created["result"]["uid"];
  CHECK(created["result"]["status"] == "running");
  CHECK(created["result"]["action"] == "touch");
  CHECK(read_text(marker) == uid);

  auto one = c.Get(("/api/v1/status?type=create&uid=" + uid).c_str(), auth());
  REQUIRE(one);
  CHECK(one->status == 200);
  CHECK(json::parse(one->body)["result"]["uid"] == uid);
  CHECK(json::parse(one->body)["result"]["status"] == "running");

  auto filtered = c.Get("/api/v1/status?type=create&target=cmarker&action=touch&status=Success",
                        httplib::Headers{{"X-Api-Token", kViewerToken}});
  REQUIRE(filtered);
  CHECK(filtered->status == 200);
  auto items = json::parse(filtered->body)["result"];
  REQUIRE(items.size() == 1);
  CHECK(items[0]["uid"] == uid);
  auto other = c.Get("/api/v1/status?target=nothing", auth());
  CHECK(json::parse(other->body)["result"] == json::array());

  auto bad = c.Get("/api/v1/status?flag=x", auth());
  REQUIRE(bad);
  CHECK(bad->status == 400);
  check_failure_shape(json::parse(bad->body), 46000);

  auto gone = c.Delete(("/api/v1/experiments/" + uid).c_str(), auth());
  REQUIRE(gone);
  CHECK(gone->status == 200);
  auto destroyed = json::parse(gone->body);
  CHECK(destroyed["success"] == true);
  CHECK(destroyed["result"]["status"] == "destroyed");
  CHECK_FALSE(fs::exists(marker));

  auto missing = c.Delete("/api/v1/experiments/0000000000000000", auth());
  REQUIRE(missing);
  CHECK(missing->status == 404);
  check_failure_shape(json::parse(missing->body), 67002);
}

TEST_CASE("/api/v1 answers errors with the native status and ChaosBlade's codes") {
  Daemon d;
  const fs::path marker = d.dir / "marker";
  auto c = d.client();

  auto required = post_json(c, "/api/v1/experiments", {{"target", "cmarker"}, {"action", "touch"}});
  REQUIRE(required);
  CHECK(required->status == 400);
  check_failure_shape(json::parse(required->body), 45000);

  auto unknown = post_json(c, "/api/v1/experiments",
                           {{"target", "cpu"}, {"action", "fullload"}, {"flags", json::object()}});
  CHECK(unknown->status == 404);
  check_failure_shape(json::parse(unknown->body), 44000);

  auto failed = post_json(c, "/api/v1/experiments",
                          {{"target", "cmarker"},
                           {"action", "touch"},
                           {"flags", {{"path", marker.string()}, {"fail-on-host", true}}}});
  CHECK(failed->status == 422);
  auto failed_body = json::parse(failed->body);
  check_failure_shape(failed_body, 63063);
  CHECK(failed_body["result"]["status"] == "failed");

  auto refused = post_json(c, "/api/v1/experiments",
                           {{"target", "cmarker"},
                            {"action", "touch"},
                            {"flags", {{"path", marker.string()}, {"fail", true}}}});
  CHECK(refused->status == 400);
  auto refused_body = json::parse(refused->body);
  check_failure_shape(refused_body, 47000);
  CHECK_FALSE(refused_body.contains("result"));

  auto viewer = post_json(
      c, "/api/v1/experiments",
      {{"target", "cmarker"}, {"action", "touch"}, {"flags", {{"path", marker.string()}}}},
      {{"X-Api-Token", kViewerToken}});
  CHECK(viewer->status == 403);
  check_failure_shape(json::parse(viewer->body), 43000);
  CHECK_FALSE(fs::exists(marker));

  auto anonymous = c.Get("/api/v1/status");
  CHECK(anonymous->status == 401);
  check_failure_shape(json::parse(anonymous->body), 43000);

  // No preparation type is served yet: the daemon's NOT_FOUND, cleanly.
  for (const auto &body : {json{{"target", "jvm"}, {"flags", {{"pid", 1}}}},
                           json{{"type", "jvm"}, {"flags", {{"pid", 1}}}}}) {
    auto prep = post_json(c, "/api/v1/preparations", body);
    REQUIRE(prep);
    CHECK(prep->status == 404);
    auto prep_body = json::parse(prep->body);
    check_failure_shape(prep_body, 44000);
    CHECK(prep_body["error"] == "no executor serves preparation type 'jvm'");
  }
  auto both = post_json(c, "/api/v1/preparations", {{"type", "jvm"}, {"target", "jvm"}});
  CHECK(both->status == 400);
  auto revoke = c.Delete("/api/v1/preparations/0000000000000000", auth());
  CHECK(revoke->status == 404);
  check_failure_shape(json::parse(revoke->body), 67002);
  auto not_json = c.Post("/api/v1/experiments", auth(), "target=cmarker", "text/plain");
  CHECK(not_json->status == 400);
  check_failure_shape(json::parse(not_json->body), 47000);

  CHECK(d.experiments_total() == 1);  // the one the plugin refused
}
