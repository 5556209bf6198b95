// parse_policy over good and bad bodies: every refusal is INVALID_ARGUMENT
// with the offending field named by its exact path; what passes comes back
// normalised; to_json echoes the user's shape.
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "blade/core/model/error.hpp"
#include "blade/core/policy/policy.hpp"
#include "stored_policy.hpp"

using namespace blade;
using nlohmann::json;

namespace {

// Three rules, so a path like spec.rules[2] exists to be broken.
json good_body() {
  return json::parse(R"({
    "apiVersion": "v1",
    "kind": "FaultInjectionPolicy",
    "metadata": {"name": "checkout-api", "version": "3"},
    "spec": {
      "rules": [
        {"priority": 10,
         "match": {"path": {"prefix": "/api/"}, "method": "post",
                   "headers": [{"name": "X-Canary", "exact": "1"},
                               {"name": "x-trace", "present": true}]},
         "fault": {"percentage": 25.0, "delay": {"fixedDelay": "200ms"}}},
        {"match": {"path": {"exact": "/health"}, "method": {"exact": "get"}},
         "fault": {"abort": {"httpStatus": 503, "body": "injected"}}},
        {"match": {"path": {"regex": "/users/[0-9]+"}},
         "fault": {"percentage": 12.5, "delay": {"fixedDelay": "1.5s"},
                   "abort": {"httpStatus": 500}}}
      ],
      "start_delay_ms": 1000,
      "duration_seconds": 60
    }
  })");
}

struct BadCase {
  const char *what;
  const char *pointer;  // JSON pointer of the value to set (or remove)
  json value;           // discarded (null) with remove
  bool remove;
  const char *field;  // the path the error must name
};

std::vector<BadCase> bad_cases() {
  const json removed;
  return {
      {"body not an object", "", json::array(), false, "body"},
      {"unknown top-level key", "/spce", json::object(), false, "spce"},
      {"wrong apiVersion", "/apiVersion", "v2", false, "apiVersion"},
      {"wrong kind", "/kind", "Policy", false, "kind"},
      {"no metadata", "/metadata", removed, true, "metadata"},
      {"no name", "/metadata/name", removed, true, "metadata.name"},
      {"empty name", "/metadata/name", "", false, "metadata.name"},
      {"upper-case name", "/metadata/name", "Checkout", false, "metadata.name"},
      {"name ending in '-'", "/metadata/name", "checkout-", false, "metadata.name"},
      {"name starting with '.'", "/metadata/name", ".checkout", false, "metadata.name"},
      {"name with '/'", "/metadata/name", "a/b", false, "metadata.name"},
      {"name of 64 characters", "/metadata/name", std::string(64, 'a'), false, "metadata.name"},
      {"name not a string", "/metadata/name", 7, false, "metadata.name"},
      {"unknown metadata key", "/metadata/labels", json::object(), false, "metadata.labels"},
      {"version not a number", "/metadata/version", "v3", false, "metadata.version"},
      {"version zero", "/metadata/version", 0, false, "metadata.version"},
      {"version with a fraction", "/metadata/version", 1.5, false, "metadata.version"},
      {"no spec", "/spec", removed, true, "spec"},
      {"no rules", "/spec/rules", removed, true, "spec.rules"},
      {"rules empty", "/spec/rules", json::array(), false, "spec.rules"},
      {"rules not an array", "/spec/rules", json::object(), false, "spec.rules"},
      {"negative start delay", "/spec/start_delay_ms", -1, false, "spec.start_delay_ms"},
      {"start delay over a week", "/spec/start_delay_ms", 604800001, false,
       "spec.start_delay_ms"},
      {"start delay a string", "/spec/start_delay_ms", "10", false, "spec.start_delay_ms"},
      {"negative duration", "/spec/duration_seconds", -5, false, "spec.duration_seconds"},
      {"duration over a year", "/spec/duration_seconds", 31536001, false,
       "spec.duration_seconds"},
      {"unknown spec key", "/spec/duration", 5, false, "spec.duration"},
      {"bad regex", "/spec/rules/2/match/path/regex", "/users/([0-9]+", false,
       "spec.rules[2].match.path.regex"},
      {"regex over 1024 bytes", "/spec/rules/2/match/path/regex", std::string(1025, 'a'), false,
       "spec.rules[2].match.path.regex"},
      {"exact and prefix both", "/spec/rules/1/match/path/prefix", "/he", false,
       "spec.rules[1].match.path"},
      {"path without a matcher", "/spec/rules/1/match/path", json::object(), false,
       "spec.rules[1].match.path"},
      {"path not starting with /", "/spec/rules/1/match/path/exact", "health", false,
       "spec.rules[1].match.path.exact"},
      {"unknown path matcher", "/spec/rules/1/match/path/suffix", "/x", false,
       "spec.rules[1].match.path.suffix"},
      {"method with a space", "/spec/rules/0/match/method", "GE T", false,
       "spec.rules[0].match.method"},
      {"method object without exact", "/spec/rules/1/match/method", json::object(), false,
       "spec.rules[1].match.method"},
      {"method object bad", "/spec/rules/1/match/method/exact", "", false,
       "spec.rules[1].match.method.exact"},
      {"method a number", "/spec/rules/0/match/method", 1, false, "spec.rules[0].match.method"},
      {"header without name", "/spec/rules/0/match/headers/0/name", removed, true,
       "spec.rules[0].match.headers[0].name"},
      {"header name not a token", "/spec/rules/0/match/headers/0/name", "x canary", false,
       "spec.rules[0].match.headers[0].name"},
      {"header present false", "/spec/rules/0/match/headers/1/present", false, false,
       "spec.rules[0].match.headers[1].present"},
      {"header present and exact", "/spec/rules/0/match/headers/1/exact", "y", false,
       "spec.rules[0].match.headers[1]"},
      {"header without matcher", "/spec/rules/0/match/headers/0/exact", removed, true,
       "spec.rules[0].match.headers[0]"},
      {"header bad regex", "/spec/rules/0/match/headers/0", json{{"name", "x"}, {"regex", "("}},
       false, "spec.rules[0].match.headers[0].regex"},
      {"header exact and regex", "/spec/rules/0/match/headers/0/regex", "1", false,
       "spec.rules[0].match.headers[0]"},
      {"headers not an array", "/spec/rules/0/match/headers", json::object(), false,
       "spec.rules[0].match.headers"},
      {"unknown match key", "/spec/rules/0/match/host", "x", false, "spec.rules[0].match.host"},
      {"missing fault", "/spec/rules/1/fault", removed, true, "spec.rules[1].fault"},
      {"fault with neither delay nor abort", "/spec/rules/1/fault", json{{"percentage", 5}}, false,
       "spec.rules[1].fault"},
      {"misspelt percentage", "/spec/rules/0/fault/precentage", 5, false,
       "spec.rules[0].fault.precentage"},
      {"percentage 101", "/spec/rules/0/fault/percentage", 101, false,
       "spec.rules[0].fault.percentage"},
      {"percentage negative", "/spec/rules/0/fault/percentage", -0.5, false,
       "spec.rules[0].fault.percentage"},
      {"percentage a string", "/spec/rules/0/fault/percentage", "50", false,
       "spec.rules[0].fault.percentage"},
      {"delay abc", "/spec/rules/0/fault/delay/fixedDelay", "abc", false,
       "spec.rules[0].fault.delay.fixedDelay"},
      {"delay without unit", "/spec/rules/0/fault/delay/fixedDelay", "200", false,
       "spec.rules[0].fault.delay.fixedDelay"},
      {"delay zero", "/spec/rules/0/fault/delay/fixedDelay", "0s", false,
       "spec.rules[0].fault.delay.fixedDelay"},
      {"delay negative", "/spec/rules/0/fault/delay/fixedDelay", "-1s", false,
       "spec.rules[0].fault.delay.fixedDelay"},
      {"delay over 10 minutes", "/spec/rules/0/fault/delay/fixedDelay", "10m1ms", false,
       "spec.rules[0].fault.delay.fixedDelay"},
      {"delay a number", "/spec/rules/0/fault/delay/fixedDelay", 200, false,
       "spec.rules[0].fault.delay.fixedDelay"},
      {"delay without fixedDelay", "/spec/rules/0/fault/delay", json::object(), false,
       "spec.rules[0].fault.delay.fixedDelay"},
      {"httpStatus 99", "/spec/rules/1/fault/abort/httpStatus", 99, false,
       "spec.rules[1].fault.abort.httpStatus"},
      {"httpStatus 600", "/spec/rules/1/fault/abort/httpStatus", 600, false,
       "spec.rules[1].fault.abort.httpStatus"},
      {"httpStatus a string", "/spec/rules/1/fault/abort/httpStatus", "503", false,
       "spec.rules[1].fault.abort.httpStatus"},
      {"abort without httpStatus", "/spec/rules/1/fault/abort/httpStatus", removed, true,
       "spec.rules[1].fault.abort.httpStatus"},
      {"abort body over 64 KiB", "/spec/rules/1/fault/abort/body", std::string(65537, 'x'), false,
       "spec.rules[1].fault.abort.body"},
      {"priority a fraction", "/spec/rules/0/priority", 1.5, false, "spec.rules[0].priority"},
      {"priority too large", "/spec/rules/0/priority", 1000001, false, "spec.rules[0].priority"},
      {"rule not an object", "/spec/rules/1", "rule", false, "spec.rules[1]"},
      {"unknown rule key", "/spec/rules/1/name", "r", false, "spec.rules[1].name"},
  };
}

json apply(const BadCase &c) {
  if (std::string(c.pointer).empty()) return c.value;
  json body = good_body();
  const json::json_pointer at(c.pointer);
  if (c.remove)
    body[at.parent_pointer()].erase(at.back());
  else
    body[at] = c.value;
  return body;
}

}  // namespace

TEST_CASE("parse_policy: each bad body is INVALID_ARGUMENT naming the exact field") {
  REQUIRE_NOTHROW(parse_policy(good_body()));
  for (const BadCase &c : bad_cases()) {
    CAPTURE(c.what);
    const json body = apply(c);
    bool threw = false;
    try {
      parse_policy(body);
    } catch (const Error &e) {
      threw = true;
      CHECK(e.code() == ErrorCode::InvalidArgument);
      REQUIRE(e.details().size() == 1);
      CHECK(e.details()[0].field == c.field);
      CHECK(!e.details()[0].description.empty());
      // The message leads with the field, so a log line alone says what.
      CHECK(std::string(e.what()).rfind(std::string(c.field) + ": ", 0) == 0);
    }
    CHECK_MESSAGE(threw, "accepted: ", body.dump());
  }
}

TEST_CASE("parse_policy: 101 rules are refused, 100 accepted") {
  json body = good_body();
  json rules = json::array();
  for (int i = 0; i < 101; ++i)
    rules.push_back(body["spec"]["rules"][0]);
  body["spec"]["rules"] = rules;
  try {
    parse_policy(body);
    FAIL("101 rules accepted");
  } catch (const Error &e) {
    CHECK(e.code() == ErrorCode::InvalidArgument);
    REQUIRE(e.details().size() == 1);
    CHECK(e.details()[0].field == "spec.rules");
  }
  body["spec"]["rules"].erase(100);
  CHECK(parse_policy(body).spec["rules"].size() == 100);
}

TEST_CASE("parse_policy: the bad regex message carries RE2's reason") {
  json body = good_body();
  body["spec"]["rules"][2]["match"]["path"]["regex"] = "(a";
  try {
    parse_policy(body);
    FAIL("accepted");
  } catch (const Error &e) {
    CHECK(e.details()[0].description.find("missing )") != std::string::npos);
  }
  // Backreferences are not RE2: refused, not left for the data plane.
  body["spec"]["rules"][2]["match"]["path"]["regex"] = "(a)\\1";
  CHECK_THROWS_AS(parse_policy(body), Error);
}

TEST_CASE("parse_policy: a good body, normalised") {
  const PolicyDraft d = parse_policy(good_body());
  CHECK(d.name == "checkout-api");
  REQUIRE(d.expected_version);
  CHECK(*d.expected_version == 3);
  CHECK(d.start_delay_ms == 1000);
  CHECK(d.duration_seconds == 60);
  const json &rules = d.spec.at("rules");
  REQUIRE(rules.size() == 3);
  // Defaults filled in, methods upper-cased in the shape given, a whole
  // percentage stored as an integer, fixedDelay as written.
  CHECK(rules[0] == json::parse(R"({"priority": 10,
      "match": {"path": {"prefix": "/api/"}, "method": "POST",
                "headers": [{"name": "X-Canary", "exact": "1"},
                            {"name": "x-trace", "present": true}]},
      "fault": {"percentage": 25, "delay": {"fixedDelay": "200ms"}}})"));
  CHECK(rules[0]["fault"]["percentage"].is_number_integer());
  CHECK(rules[1] == json::parse(R"({"priority": 0,
      "match": {"path": {"exact": "/health"}, "method": {"exact": "GET"}},
      "fault": {"percentage": 100, "abort": {"httpStatus": 503, "body": "injected"}}})"));
  CHECK(rules[2]["fault"]["percentage"] == 12.5);
  CHECK(d.spec.size() == 1);  // start delay and duration are fields of their own
}

TEST_CASE("parse_policy: minimal body; version as an integer; a rule without match") {
  const PolicyDraft d = parse_policy(json::parse(R"({"metadata": {"name": "a", "version": 2},
      "spec": {"rules": [{"fault": {"delay": {"fixedDelay": "1500us"}}}]}})"));
  CHECK(d.name == "a");
  CHECK(d.expected_version == 2);
  CHECK(d.start_delay_ms == 0);
  CHECK(d.duration_seconds == 0);
  CHECK(d.spec["rules"][0]["match"] == json::object());
  CHECK(!parse_policy(json::parse(R"({"metadata": {"name": "a.b_c-9"},
      "spec": {"rules": [{"fault": {"abort": {"httpStatus": 200}}}]}})"))
             .expected_version);
}

TEST_CASE("to_json: the API shape, and what it gives parses back to the same draft") {
  const PolicyDraft d = parse_policy(good_body());  // start delay 1 s, duration 60 s
  FaultPolicy p = test::stored_policy(d, SystemTime(std::chrono::milliseconds(1795000000000)),
                                      SystemTime(std::chrono::milliseconds(1795000005000)), 4);
  const json j = to_json(p);
  CHECK(j["apiVersion"] == "v1");
  CHECK(j["kind"] == "FaultInjectionPolicy");
  CHECK(j["metadata"]["name"] == "checkout-api");
  CHECK(j["metadata"]["version"] == "4");
  CHECK(j["metadata"]["created_at"] == "2026-11-18T11:06:40.000Z");
  CHECK(j["metadata"]["updated_at"] == "2026-11-18T11:06:45.000Z");
  CHECK(j["spec"]["rules"] == d.spec["rules"]);
  CHECK(j["spec"]["start_delay_ms"] == 1000);
  CHECK(j["spec"]["duration_seconds"] == 60);
  CHECK(j["status"]["active_from"] == "2026-11-18T11:06:46.000Z");
  CHECK(j["status"]["expires_at"] == "2026-11-18T11:07:46.000Z");
  // A policy read back can be sent again as it is (read-only fields ignored).
  const PolicyDraft again = parse_policy(j);
  CHECK(again.spec == d.spec);
  CHECK(again.expected_version == 4);
  p.expires_at.reset();
  CHECK(to_json(p)["status"]["expires_at"].is_null());
}
