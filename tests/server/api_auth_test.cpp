// Who may call bladed: tokens from the config file with roles and expiry,
// 401 vs 403, rate limits, and the audit trail of mutations and failures.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../support/eventually.hpp"
#include "bladed_process.hpp"

namespace fs = std::filesystem;
using blade::test::auth;
using blade::test::BladedOptions;
using blade::test::BladedProcess;
using blade::test::post_json;
using nlohmann::json;

namespace {

const std::string kViewer = "viewer-secret-0123456789abcdef";
const std::string kExpired = "expired-secret-0123456789abcde";
const std::string kSlow = "slow-secret-0123456789abcdefgh";

// A daemon whose config file names a viewer, an expired admin and a
// rate-limited admin, besides the default admin token from the environment.
struct TokenDaemon : BladedProcess {
  static BladedOptions options(std::vector<std::string> extra) {
    static int n = 0;
    fs::path file = fs::temp_directory_path() / ("blade-tokens-" + std::to_string(::getpid()) +
                                                 "-" + std::to_string(n++) + ".yaml");
    std::ofstream(file) << "tokens:\n"
                        << "  - {name: dashboard, token: " << kViewer << ", role: viewer}\n"
                        << "  - {name: old-ci, token: " << kExpired
                        << ", role: admin, expires: 2020-01-01T00:00:00Z}\n"
                        << "  - {name: slow, token: " << kSlow << ", role: admin, rate-limit: 1}\n";
    BladedOptions o;
    o.args = {"--config", file.string()};
    o.args.insert(o.args.end(), extra.begin(), extra.end());
    return o;
  }
  explicit TokenDaemon(std::vector<std::string> extra = {}) : BladedProcess(options(extra)) {}
};

httplib::Headers token(const std::string &secret) {
  return {{"X-Api-Token", secret}};
}

json body_of(const httplib::Result &r) {
  return json::parse(r->body);
}

std::vector<json> audit_lines(httplib::Client &c) {
  auto res = c.Get("/v1/audit?limit=1000", auth());
  REQUIRE(res);
  REQUIRE(res->status == 200);
  auto items = body_of(res)["data"]["items"];
  return {items.begin(), items.end()};
}

}  // namespace

TEST_CASE("401 for a missing, wrong or expired token; 403 for a viewer that mutates") {
  TokenDaemon d;
  auto c = d.client();
  fs::path file = d.dir / "viewer-marker";

  auto missing = c.Get("/v1/experiments");
  CHECK(missing->status == 401);
  CHECK(body_of(missing)["code"] == "UNAUTHENTICATED");
  CHECK(c.Get("/v1/experiments", token("nope"))->status == 401);
  auto expired = c.Get("/v1/experiments", token(kExpired));
  CHECK(expired->status == 401);
  CHECK(body_of(expired)["message"] == "API token 'old-ci' has expired");

  // A viewer reads everything but changes nothing.
  CHECK(c.Get("/v1/experiments", token(kViewer))->status == 200);
  CHECK(c.Get("/v1/plugins", {{"Authorization", "Bearer " + kViewer}})->status == 200);
  auto denied =
      post_json(c, "/v1/experiments", blade::test::marker_experiment(file), token(kViewer));
  CHECK(denied->status == 403);
  CHECK(body_of(denied)["code"] == "PERMISSION_DENIED");
  CHECK_FALSE(fs::exists(file));
  CHECK(c.Get("/v1/audit", token(kViewer))->status == 403);

  // The admin's experiment cannot be destroyed by the viewer either.
  auto created = post_json(c, "/v1/experiments", blade::test::marker_experiment(file));
  REQUIRE(created->status == 201);
  std::string uid = body_of(created)["data"]["uid"];
  CHECK(c.Delete(("/v1/experiments/" + uid).c_str(), token(kViewer))->status == 403);
  CHECK(fs::exists(file));
  CHECK(c.Delete(("/v1/experiments/" + uid).c_str(), auth())->status == 200);
  CHECK_FALSE(fs::exists(file));
}

TEST_CASE("mutations and auth failures are audited with the token's name, never the token") {
  TokenDaemon d;
  auto c = d.client();
  fs::path file = d.dir / "audited";
  auto created = post_json(c, "/v1/experiments", blade::test::marker_experiment(file),
                           {{"X-Api-Token", blade::test::kToken}, {"X-Request-Id", "req-42"}});
  REQUIRE(created->status == 201);
  CHECK(created->get_header_value("X-Request-Id") == "req-42");
  std::string uid = body_of(created)["data"]["uid"];
  CHECK(c.Get("/v1/plugins", token("wrong-guess"))->status == 401);
  CHECK(post_json(c, "/v1/experiments", blade::test::marker_experiment(file), token(kViewer))
            ->status == 403);
  CHECK(post_json(c, "/v1/experiments", {{"target", "cmarker"}})->status == 400);
  CHECK(c.Delete(("/v1/experiments/" + uid).c_str(), auth())->status == 200);
  // Bodies are kept as JSON as the client wrote it (across lines too), or as
  // their size when they are not JSON.
  CHECK(c.Post("/v1/experiments", auth(), "{\n  \"target\": \"cmarker\",\n  \"x\": [1, 2]\n}\n",
               "application/json")
            ->status == 400);
  CHECK(c.Post("/v1/experiments", auth(), "{not json", "application/json")->status == 400);

  auto lines = audit_lines(c);
  auto find = [&](const std::string &action, const std::string &outcome_prefix) {
    for (const auto &l : lines)
      if (l["action"] == action && l["outcome"].get<std::string>().rfind(outcome_prefix, 0) == 0)
        return l;
    return json();
  };
  auto create_line = find("http.request", "201");
  REQUIRE(create_line.is_object());
  CHECK(create_line["actor"] == "default");
  CHECK(create_line["remote"] == "127.0.0.1");
  CHECK(create_line["subject"] == "POST /v1/experiments");
  CHECK(create_line["params"]["request_id"] == "req-42");
  CHECK(create_line["params"]["body"]["flags"]["path"] == file.string());
  auto failure = find("auth.failure", "401");
  REQUIRE(failure.is_object());
  CHECK(failure["subject"] == "GET /v1/plugins");
  CHECK(find("http.request", "403 PERMISSION_DENIED")["actor"] == "dashboard");
  CHECK(find("http.request", "400 INVALID_ARGUMENT").is_object());
  std::vector<json> bodies;
  for (const auto &l : lines)
    if (l["action"] == "http.request" && l["outcome"] == "400 INVALID_ARGUMENT")
      bodies.push_back(l["params"]["body"]);
  CHECK(std::count(bodies.begin(), bodies.end(),
                   json{{"target", "cmarker"}, {"x", {1, 2}}}) == 1);
  CHECK(std::count(bodies.begin(), bodies.end(), json("<9 bytes>")) == 1);
  CHECK(find("http.request", "200")["subject"] == "DELETE /v1/experiments/" + uid);
  // The service's own lines record the state changes themselves.
  CHECK(find("experiment.create", "").is_object());
  CHECK(find("experiment.destroy", "").is_object());

  // No secret anywhere in the audit log or the daemon's log.
  const std::string everything = json(lines).dump() + blade::test::read_text(d.log_file());
  for (const auto &secret :
       {blade::test::kToken, kViewer, kExpired, kSlow, std::string("wrong-guess")})
    CHECK(everything.find(secret) == std::string::npos);
}

TEST_CASE("a token over its rate limit gets 429, other tokens are unaffected") {
  TokenDaemon d;
  auto c = d.client();
  // rate-limit 1/s allows a burst of 2.
  int limited = 0;
  for (int i = 0; i < 5; ++i) {
    auto r = c.Get("/v1/experiments", token(kSlow));
    if (r->status == 429) {
      ++limited;
      CHECK(body_of(r)["code"] == "RESOURCE_EXHAUSTED");
    }
  }
  CHECK(limited >= 2);
  CHECK(c.Get("/v1/experiments", auth())->status == 200);
  // The bucket refills.
  CHECK(
      blade::test::eventually([&] { return c.Get("/v1/experiments", token(kSlow))->status == 200; },
                              std::chrono::seconds(3)));
}

TEST_CASE("the cap on active experiments answers 429 and changes nothing") {
  BladedOptions o;
  o.args = {"--max-active", "1"};
  BladedProcess d(o);
  auto c = d.client();
  REQUIRE(post_json(c, "/v1/experiments", blade::test::marker_experiment(d.dir / "one"))->status ==
          201);
  auto second = post_json(c, "/v1/experiments", blade::test::marker_experiment(d.dir / "two"));
  CHECK(second->status == 429);
  CHECK(body_of(second)["code"] == "RESOURCE_EXHAUSTED");
  CHECK_FALSE(fs::exists(d.dir / "two"));
}

TEST_CASE("invalid token configuration stops bladed at start, naming the entry") {
  blade::test::TempDir dir;
  auto run = [&](const std::string &yaml) {
    std::ofstream(dir / "c.yaml") << yaml;
    blade::test::ChildProcess p({blade::test::kBladed, "--config", (dir / "c.yaml").string(),
                                 "--port", "0", "--state-dir", (dir / "state").string()},
                                {"BLADE_API_TOKEN="}, (dir / "log").string());
    CHECK(p.exit_code(std::chrono::seconds(10)) == 2);
    return blade::test::read_text(dir / "log");
  };
  CHECK(run("tokens:\n  - {name: a, token: x, role: boss}\n").find("tokens[0].role") !=
        std::string::npos);
  CHECK(run("tokens:\n  - {name: a, token: x, expires: tomorrow}\n").find("tokens[0].expires") !=
        std::string::npos);
  CHECK(run("tokens:\n  - {name: a, token: x}\n  - {name: a, token: y}\n")
            .find("tokens[a]: name used twice") != std::string::npos);
  CHECK(run("tokens:\n  - {name: a}\n").find("tokens[0].token: required") != std::string::npos);
  CHECK(run("tokens: []\n").find("no API token configured") != std::string::npos);
}
