// compile_rule_set: the document of docs/http-faults.md ("The compiled rule
// set"): order, ids, the data planes' shapes, windows, and a version that
// depends on the content alone.
#include <algorithm>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "blade/core/policy/policy.hpp"
#include "stored_policy.hpp"

using namespace blade;
using nlohmann::json;

namespace {

constexpr std::int64_t kT0 = 1795000000000;  // ms since the epoch

SystemTime at_ms(std::int64_t ms) {
  return SystemTime(std::chrono::milliseconds(ms));
}

// A stored policy from a body's spec, as the service would make it at kT0.
FaultPolicy policy(const std::string &name, const json &rules, std::int64_t start_delay_ms = 0,
                   std::int64_t duration_s = 0) {
  const PolicyDraft d = parse_policy(json{{"metadata", {{"name", name}}},
                                          {"spec",
                                           {{"rules", rules},
                                            {"start_delay_ms", start_delay_ms},
                                            {"duration_seconds", duration_s}}}});
  return test::stored_policy(d, at_ms(kT0), at_ms(kT0));
}

json rule(std::int64_t priority, const std::string &prefix) {
  return json{{"priority", priority},
              {"match", {{"path", {{"prefix", prefix}}}}},
              {"fault", {{"abort", {{"httpStatus", 503}}}}}};
}

std::vector<std::string> ids(const json &set) {
  std::vector<std::string> out;
  for (const json &r : set.at("rules"))
    out.push_back(r.at("id").get<std::string>());
  return out;
}

}  // namespace

TEST_CASE("compile: priority first, then policy name, then rule index; ids policy/index") {
  const std::vector<FaultPolicy> policies = {
      policy("zeta", json::array({rule(0, "/z0"), rule(5, "/z1"), rule(0, "/z2")})),
      policy("alpha", json::array({rule(0, "/a0"), rule(5, "/a1"), rule(-3, "/a2")})),
      policy("mid", json::array({rule(100, "/m0")})),
  };
  const json set = json::parse(compile_rule_set(policies));
  CHECK(ids(set) == std::vector<std::string>{"mid/0", "alpha/1", "zeta/1", "alpha/0", "zeta/0",
                                             "zeta/2", "alpha/2"});
  for (const json &r : set["rules"]) {
    const std::string id = r["id"];
    CHECK(id == r["policy"].get<std::string>() + "/" + std::to_string(r["index"].get<int>()));
  }
  CHECK(set["rules"][0]["priority"] == 100);
  CHECK(set["rules"][1]["match"]["path"]["prefix"] == "/a1");
  // The input order of the policies does not matter.
  std::vector<FaultPolicy> reversed(policies.rbegin(), policies.rend());
  CHECK(compile_rule_set(reversed) == compile_rule_set(policies));
}

TEST_CASE("compile: the data planes' shapes") {
  const FaultPolicy p = policy("checkout", json::parse(R"([
      {"priority": 10,
       "match": {"path": {"regex": "/api/v[0-9]+/.*"}, "method": {"exact": "post"},
                 "headers": [{"name": "X-Canary", "exact": "1"},
                             {"name": "X-Trace", "present": true}]},
       "fault": {"percentage": 25.0, "delay": {"fixedDelay": "200ms"},
                 "abort": {"httpStatus": 503, "body": "injected"}}},
      {"match": {"method": "get", "headers": []},
       "fault": {"percentage": 0.5, "delay": {"fixedDelay": "1500us"}}},
      {"fault": {"abort": {"httpStatus": 429}}}])"));
  const json set = json::parse(compile_rule_set({p}));
  REQUIRE(set["rules"].size() == 3);
  CHECK(set["rules"][0] == json::parse(R"({
      "id": "checkout/0", "policy": "checkout", "index": 0, "priority": 10,
      "match": {"path": {"regex": "/api/v[0-9]+/.*"}, "method": "POST",
                "headers": [{"name": "x-canary", "exact": "1"},
                            {"name": "x-trace", "present": true}]},
      "fault": {"percentage": 25, "delay_ms": 200,
                "abort": {"status": 503, "body": "injected"}},
      "active_from_ms": 1795000000000, "active_until_ms": null})"));
  // Sub-millisecond delays round up; an empty header list and an absent
  // abort leave no key.
  CHECK(set["rules"][1]["match"] == json::parse(R"({"method": "GET"})"));
  CHECK(set["rules"][1]["fault"] == json::parse(R"({"percentage": 0.5, "delay_ms": 2})"));
  // No match: every request; an abort without body has an empty one.
  CHECK(set["rules"][2]["match"] == json::object());
  CHECK(set["rules"][2]["fault"] == json::parse(R"({"percentage": 100,
      "abort": {"status": 429, "body": ""}})"));
}

TEST_CASE("compile: windows from the policy's start delay and duration") {
  const FaultPolicy forever = policy("a", json::array({rule(0, "/")}));
  const FaultPolicy windowed = policy("b", json::array({rule(0, "/")}), 1500, 30);
  const json set = json::parse(compile_rule_set({forever, windowed}));
  CHECK(set["rules"][0]["active_from_ms"] == kT0);
  CHECK(set["rules"][0]["active_until_ms"].is_null());
  CHECK(set["rules"][1]["active_from_ms"] == kT0 + 1500);
  CHECK(set["rules"][1]["active_until_ms"] == kT0 + 1500 + 30000);
}

TEST_CASE("compile: the version is a hash of the content, and only of it") {
  const FaultPolicy a = policy("a", json::array({rule(1, "/x"), rule(2, "/y")}));
  const std::string text = compile_rule_set({a});
  const json set = json::parse(text);
  const std::string version = set["version"];
  CHECK(version.size() == 16);
  CHECK(std::all_of(version.begin(), version.end(),
                    [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }));
  // The version leads the text; the same input gives the same bytes.
  CHECK(text.rfind(R"({"version":")" + version + R"(","rules":[)", 0) == 0);
  CHECK(compile_rule_set({a}) == text);
  // The same content from a differently written body: the same version
  // (percentage 100 given or defaulted, header name case, method shape).
  const FaultPolicy h1 = policy("h", json::parse(R"([{"match": {"method": "get",
      "headers": [{"name": "X-A", "exact": "1"}]}, "fault": {"abort": {"httpStatus": 503}}}])"));
  const FaultPolicy h2 = policy("h", json::parse(R"([{"match": {"method": {"exact": "GET"},
      "headers": [{"name": "x-a", "exact": "1"}]},
      "fault": {"percentage": 100.0, "abort": {"httpStatus": 503, "body": ""}}}])"));
  CHECK(compile_rule_set({h1}) == compile_rule_set({h2}));

  // Any change of content changes it.
  std::vector<std::string> versions{version};
  auto version_of = [](const std::vector<FaultPolicy> &ps) {
    return json::parse(compile_rule_set(ps))["version"].get<std::string>();
  };
  FaultPolicy changed = a;
  changed.spec["rules"][0]["fault"]["abort"]["httpStatus"] = 504;
  versions.push_back(version_of({changed}));
  changed = a;
  changed.spec["rules"][1]["priority"] = 3;
  versions.push_back(version_of({changed}));
  changed = a;
  changed.active_from += std::chrono::milliseconds(1);
  versions.push_back(version_of({changed}));
  changed = a;
  changed.expires_at = changed.active_from + std::chrono::seconds(5);
  versions.push_back(version_of({changed}));
  changed = a;
  changed.name = "b";
  versions.push_back(version_of({changed}));
  versions.push_back(version_of({}));
  std::sort(versions.begin(), versions.end());
  CHECK(std::adjacent_find(versions.begin(), versions.end()) == versions.end());
  // What the version counts is the content; the policy's own version
  // number and timestamps besides the window are not rules.
  changed = a;
  changed.version = 9;
  changed.updated_at += std::chrono::hours(1);
  CHECK(compile_rule_set({changed}) == text);
}

TEST_CASE("compile: no policies is an empty set with a version") {
  const json set = json::parse(compile_rule_set({}));
  CHECK(set["rules"] == json::array());
  CHECK(set["version"].get<std::string>().size() == 16);
}
