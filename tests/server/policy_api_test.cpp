// /v1/policies against a real bladed: the life of a policy over HTTP, the
// error matrix (each refusal changing nothing), the audit, and a policy
// that expires while bladed is down.
#include <signal.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../support/eventually.hpp"
#include "policy_calls.hpp"

using namespace blade::test;
using nlohmann::json;

namespace {

// The policies listed, as name -> metadata.version.
std::map<std::string, std::string> listed(httplib::Client &c) {
  const Answer a = list_policies(c);
  REQUIRE_MESSAGE(a.status == 200, a.body.dump());
  std::map<std::string, std::string> out;
  for (const auto &p : a.body["data"]["items"])
    out[p["metadata"]["name"].get<std::string>()] = p["metadata"]["version"].get<std::string>();
  CHECK(a.body["data"]["total"] == out.size());
  return out;
}

// The audit lines, newest first.
std::vector<json> audit_lines(httplib::Client &c) {
  const Answer a = answer_of(c.Get("/v1/audit?limit=1000", auth()));
  REQUIRE(a.status == 200);
  return {a.body["data"]["items"].begin(), a.body["data"]["items"].end()};
}

const json *find_audit(const std::vector<json> &lines, const std::string &action,
                       const std::string &subject) {
  for (const auto &l : lines)
    if (l["action"] == action && l["subject"] == subject) return &l;
  return nullptr;
}

// A body of `bytes` bytes in all: a valid policy padded with spaces.
std::string padded_policy(std::size_t bytes) {
  std::string text = fault_policy("huge").dump();
  text.insert(1, bytes - text.size(), ' ');
  return text;
}

// A rule whose path regex is `regex`.
json regex_rule(const std::string &regex) {
  return {{"match", {{"path", {{"regex", regex}}}}},
          {"fault", {{"abort", {{"httpStatus", 500}}}}}};
}

}  // namespace

TEST_CASE("a policy is created, read, listed, updated and deleted over HTTP") {
  PolicyDaemon d;
  auto c = d.bladed.client();
  CHECK(listed(c).empty());

  const Answer created = create_policy(c, fault_policy("checkout"));
  REQUIRE_MESSAGE(created.status == 201, created.body.dump());
  const json &p = created.body["data"];
  CHECK(p["kind"] == "FaultInjectionPolicy");
  CHECK(p["metadata"]["name"] == "checkout");
  CHECK(p["metadata"]["version"] == "1");
  CHECK(p["spec"]["rules"].size() == 1);
  CHECK(p["spec"]["rules"][0]["match"]["path"]["prefix"] == "/api/");
  CHECK(p["spec"]["rules"][0]["fault"]["abort"]["httpStatus"] == 503);

  const Answer got = get_policy(c, "checkout");
  REQUIRE(got.status == 200);
  CHECK(got.body["data"] == p);
  // A viewer reads policies too.
  CHECK(get_policy(c, "checkout", viewer()).status == 200);
  CHECK(list_policies(c, viewer()).status == 200);

  REQUIRE(create_policy(c, fault_policy("billing")).status == 201);
  CHECK(listed(c) == std::map<std::string, std::string>{{"billing", "1"}, {"checkout", "1"}});

  // PUT replaces the spec and counts the version up; metadata.name may be
  // left to the path.
  json changed = fault_policy("checkout", json::array({abort_rule("/pay/", 502, 7)}));
  changed["metadata"].erase("name");
  const Answer updated = put_policy(c, "checkout", changed);
  REQUIRE_MESSAGE(updated.status == 200, updated.body.dump());
  CHECK(updated.body["data"]["metadata"]["version"] == "2");
  CHECK(updated.body["data"]["spec"]["rules"][0]["priority"] == 7);
  CHECK(get_policy(c, "checkout").body["data"]["spec"]["rules"][0]["fault"]["abort"]["httpStatus"] ==
        502);

  // With the version it was read at, an update goes through once.
  json guarded = fault_policy("checkout", json::array({abort_rule("/pay/", 504)}));
  guarded["metadata"]["version"] = "2";
  CHECK(put_policy(c, "checkout", guarded).status == 200);
  CHECK(listed(c)["checkout"] == "3");

  const Answer deleted = delete_policy(c, "checkout");
  REQUIRE_MESSAGE(deleted.status == 200, deleted.body.dump());
  CHECK(deleted.body["data"]["metadata"]["name"] == "checkout");
  CHECK(deleted.body["data"]["metadata"]["version"] == "3");
  CHECK(get_policy(c, "checkout").status == 404);
  CHECK(listed(c) == std::map<std::string, std::string>{{"billing", "1"}});
}

TEST_CASE("the policy error matrix: 400, 404, 409, 401, 403, 413, each changing nothing") {
  PolicyDaemon d;
  auto c = d.bladed.client();
  REQUIRE(create_policy(c, fault_policy("checkout")).status == 201);
  const auto before = listed(c);
  const json stored = get_policy(c, "checkout").body["data"];

  SUBCASE("400: malformed JSON, not an object, a wrong Content-Type, too deep") {
    const Answer bad = answer_of(c.Post("/v1/policies", auth(), "{\"metadata\": ", "application/json"));
    CHECK(bad.status == 400);
    CHECK(bad.body["code"] == "INVALID_ARGUMENT");
    CHECK(bad.field() == "body");
    CHECK(answer_of(c.Post("/v1/policies", auth(), "[1]", "application/json")).field() == "body");
    const Answer yaml = answer_of(
        c.Post("/v1/policies", auth(), "metadata: {name: x}\n", "application/yaml"));
    CHECK(yaml.status == 400);
    CHECK(yaml.field() == "Content-Type");
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    const Answer too_deep = answer_of(c.Post("/v1/policies", auth(), deep, "application/json"));
    CHECK(too_deep.status == 400);
    CHECK(too_deep.field() == "body");
    const Answer put_bad =
        answer_of(c.Put("/v1/policies/checkout", auth(), "{", "application/json"));
    CHECK(put_bad.status == 400);
    CHECK(put_bad.field() == "body");
  }

  SUBCASE("400: a bad regex names its field, spec.rules[2].match.path.regex") {
    json body = fault_policy("regex", json::array({abort_rule("/a/"), regex_rule("/b/.*"),
                                                    regex_rule("/c/(unclosed")}));
    const Answer a = create_policy(c, body);
    CHECK(a.status == 400);
    CHECK(a.body["code"] == "INVALID_ARGUMENT");
    CHECK_MESSAGE(a.field() == "spec.rules[2].match.path.regex", a.body.dump());
    // The same on an update, which leaves the stored policy as it was.
    body["metadata"]["name"] = "checkout";
    const Answer u = put_policy(c, "checkout", body);
    CHECK(u.status == 400);
    CHECK(u.field() == "spec.rules[2].match.path.regex");
  }

  SUBCASE("400: an unknown field is named") {
    json body = fault_policy("typo");
    body["spec"]["rules"][0]["fualt"] = body["spec"]["rules"][0]["fault"];
    const Answer a = create_policy(c, body);
    CHECK(a.status == 400);
    CHECK_MESSAGE(a.field() == "spec.rules[0].fualt", a.body.dump());
    json top = fault_policy("typo");
    top["specs"] = json::object();
    CHECK(create_policy(c, top).field() == "specs");
  }

  SUBCASE("400: a PUT whose body names another policy") {
    const Answer a = put_policy(c, "checkout", fault_policy("billing"));
    CHECK(a.status == 400);
    CHECK(a.field() == "metadata.name");
  }

  SUBCASE("404: get, put and delete of an absent policy") {
    for (const Answer &a : {get_policy(c, "absent"), put_policy(c, "absent", fault_policy("absent")),
                            delete_policy(c, "absent")}) {
      CHECK(a.status == 404);
      CHECK(a.body["code"] == "NOT_FOUND");
    }
  }

  SUBCASE("409: a duplicate name, a stale version") {
    const Answer dup = create_policy(c, fault_policy("checkout", json::array({abort_rule("/x/")})));
    CHECK(dup.status == 409);
    CHECK(dup.body["code"] == "ALREADY_EXISTS");
    json stale = fault_policy("checkout", json::array({abort_rule("/y/")}));
    stale["metadata"]["version"] = "7";
    const Answer s = put_policy(c, "checkout", stale);
    CHECK(s.status == 409);
    CHECK(s.field() == "metadata.version");
  }

  SUBCASE("401: no token, a wrong token") {
    const httplib::Headers none;
    const httplib::Headers wrong = {{"X-Api-Token", "not-a-token-at-all-0123456789"}};
    for (const auto &h : {none, wrong}) {
      CHECK(create_policy(c, fault_policy("sneaky"), h).status == 401);
      CHECK(put_policy(c, "checkout", fault_policy("checkout", json::array({abort_rule("/z/")})), h)
                .status == 401);
      CHECK(delete_policy(c, "checkout", h).status == 401);
      CHECK(get_policy(c, "checkout", h).status == 401);
      CHECK(list_policies(c, h).status == 401);
    }
  }

  SUBCASE("403: a viewer may not create, update or delete") {
    CHECK(create_policy(c, fault_policy("sneaky"), viewer()).status == 403);
    const Answer u =
        put_policy(c, "checkout", fault_policy("checkout", json::array({abort_rule("/z/")})), viewer());
    CHECK(u.status == 403);
    CHECK(u.body["code"] == "PERMISSION_DENIED");
    CHECK(delete_policy(c, "checkout", viewer()).status == 403);
  }

  SUBCASE("413: a body over 1 MiB") {
    const Answer big =
        answer_of(c.Post("/v1/policies", auth(), padded_policy(1024 * 1024 + 1), "application/json"));
    CHECK(big.status == 413);
    CHECK(big.field() == "body");
    // Just under the limit the same policy is taken: the limit is the size.
    const Answer fits =
        answer_of(c.Post("/v1/policies", auth(), padded_policy(1024 * 1024 - 64), "application/json"));
    CHECK_MESSAGE(fits.status == 201, fits.body.dump());
    CHECK(delete_policy(c, "huge").status == 200);
  }

  CHECK(listed(c) == before);
  CHECK(get_policy(c, "checkout").body["data"] == stored);
}

TEST_CASE("policy changes are audited with the token's name") {
  PolicyDaemon d;
  auto c = d.bladed.client();
  REQUIRE(create_policy(c, fault_policy("audited")).status == 201);
  REQUIRE(put_policy(c, "audited", fault_policy("audited", json::array({abort_rule("/b/")}))).status ==
          200);
  REQUIRE(delete_policy(c, "audited").status == 200);
  CHECK(create_policy(c, fault_policy("denied"), viewer()).status == 403);

  const auto lines = audit_lines(c);
  for (const char *action : {"policy.create", "policy.update", "policy.delete"}) {
    CAPTURE(action);
    const json *line = find_audit(lines, action, "audited");
    REQUIRE(line);
    CHECK((*line)["actor"] == "default");
  }
  // The requests themselves, refusals included.
  const json *post = find_audit(lines, "http.request", "POST /v1/policies");
  REQUIRE(post);
  bool refused = false;
  for (const auto &l : lines)
    refused = refused || (l["subject"] == "POST /v1/policies" && l["actor"] == "dashboard" &&
                          l["outcome"] == "403 PERMISSION_DENIED");
  CHECK(refused);
}

TEST_CASE("a policy is deleted at its end while bladed runs") {
  PolicyDaemon d;
  auto c = d.bladed.client();
  json body = fault_policy("brief");
  body["spec"]["duration_seconds"] = 1;
  const Answer a = create_policy(c, body);
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  CHECK(a.body["data"]["status"]["expires_at"].is_string());
  CHECK(get_policy(c, "brief").status == 200);
  CHECK(eventually([&] { return get_policy(c, "brief").status == 404; }, std::chrono::seconds(5)));
  const auto lines = audit_lines(c);
  const json *line = find_audit(lines, "policy.expire", "brief");
  REQUIRE(line);
  CHECK((*line)["actor"] == "system");
}

TEST_CASE("a policy that expired while bladed was down is gone after the restart") {
  PolicyDaemon d;
  auto c = d.bladed.client();
  json body = fault_policy("ephemeral");
  body["spec"]["duration_seconds"] = 2;
  REQUIRE(create_policy(c, body).status == 201);
  REQUIRE(create_policy(c, fault_policy("lasting")).status == 201);
  const auto created = std::chrono::steady_clock::now();

  d.bladed.process->signal(SIGTERM);
  REQUIRE(d.bladed.process->exit_code(std::chrono::seconds(10)) == 0);
  // Past its end while no daemon runs.
  std::this_thread::sleep_until(created + std::chrono::milliseconds(2500));
  d.bladed.restart();
  auto c2 = d.bladed.client();

  CHECK(get_policy(c2, "ephemeral").status == 404);
  CHECK(listed(c2) == std::map<std::string, std::string>{{"lasting", "1"}});
  const auto lines = audit_lines(c2);
  const json *line = find_audit(lines, "policy.expire", "ephemeral");
  REQUIRE(line);
  CHECK((*line)["actor"] == "system");
}
