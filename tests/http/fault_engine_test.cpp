// The http plugin's rule engine as a unit: the compiled rule set parsed and
// matched (each matcher kind, the first match in order, the windows, the
// policy filter), percentages drawn per request, counters, the classic
// flags' one-rule set, and updates racing requests.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../plugins/http/src/fault_engine.hpp"

namespace {

using blade::http::Decision;
using blade::http::FaultEngine;
using blade::http::HeaderField;
using blade::http::RequestView;
using nlohmann::json;

constexpr std::int64_t kNow = 1'795'000'000'000;

// A rule that aborts with `status` whenever `match` matches.
json rule(const std::string &id, json match, int status = 503, double percentage = 100) {
  auto slash = id.find('/');
  return {{"id", id},
          {"policy", id.substr(0, slash)},
          {"index", 0},
          {"priority", 0},
          {"match", std::move(match)},
          {"fault", {{"percentage", percentage}, {"abort", {{"status", status}, {"body", id}}}}},
          {"active_from_ms", 0},
          {"active_until_ms", nullptr}};
}

std::string set_of(const std::string &version, json rules) {
  return json{{"version", version}, {"rules", std::move(rules)}}.dump();
}

struct Request {
  std::string method = "GET";
  std::string target = "/";
  std::vector<HeaderField> headers;
  RequestView view() const { return {method, target, headers}; }
};

std::string matched(FaultEngine &engine, const Request &r, std::int64_t now = kNow) {
  return std::string(engine.decide(r.view(), now).rule_id());
}

// The counters of one series of counters_json(), by its rule label.
json counters_of(const FaultEngine &engine, const std::string &rule) {
  const json counters = engine.counters_json();
  for (const json &s : counters["series"])
    if (s["labels"]["rule"] == rule) return s["counters"];
  return nullptr;
}

// One rule, one request: does it match?
bool one_rule_matches(json match, const Request &r) {
  FaultEngine engine;
  engine.update(set_of("v", json::array({rule("p/0", std::move(match))})));
  return matched(engine, r) == "p/0";
}

}  // namespace

TEST_CASE("path matchers: exact, prefix, regex (whole path), the query never part of it") {
  struct Row {
    json path;
    std::string target;
    bool expected;
  };
  const Row rows[] = {
      {{{"exact", "/api/orders"}}, "/api/orders", true},
      {{{"exact", "/api/orders"}}, "/api/orders?id=1", true},
      {{{"exact", "/api/orders"}}, "/api/orders/1", false},
      {{{"exact", "/api/orders"}}, "/api/order", false},
      {{{"exact", "/api/orders"}}, "/API/orders", false},
      {{{"exact", "/a?b"}}, "/a?b", false},  // '?' starts the query, never the path
      {{{"prefix", "/api/"}}, "/api/x", true},
      {{{"prefix", "/api/"}}, "/api/", true},
      {{{"prefix", "/api/"}}, "/api", false},
      {{{"prefix", "/api/"}}, "/apix/", false},
      {{{"prefix", "/api/"}}, "/x?next=/api/", false},
      {{{"prefix", "/api/"}}, "http://shop.example:8080/api/x?q=1", true},  // absolute form
      {{{"exact", "/"}}, "http://shop.example", true},
      {{{"regex", "/api/[0-9]+"}}, "/api/12", true},
      {{{"regex", "/api/[0-9]+"}}, "/api/12?y=/a", true},
      {{{"regex", "/api/[0-9]+"}}, "/api/12/x", false},  // full match, not a search
      {{{"regex", "/api/[0-9]+"}}, "/v1/api/12", false},
      {{{"regex", "/api/[0-9]+"}}, "/api/", false},
      {{{"regex", "/(a|b)+/.*"}}, "/abba/zz", true},
      {{{"regex", "/(a|b)+/.*"}}, "/abc/zz", false},
      {{{"regex", "(?i)/API/v[0-9]"}}, "/api/V2", true},  // flags in the pattern
      {{{"regex", "(?i)/API/v[0-9]"}}, "/apx/v2", false},
      {{{"regex", ".*/orders"}}, "/a/b/orders", true},  // no literal head to bound it by
      {{{"regex", ".*/orders"}}, "/a/b/orders/1", false},
      {{{"regex", "/caf\\x{e9}"}}, "/caf\xc3\xa9", true},  // UTF-8
      {{{"regex", "/z+"}},
       "/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
       true},
  };
  for (const Row &row : rows) {
    CAPTURE(row.path.dump());
    CAPTURE(row.target);
    Request r;
    r.target = row.target;
    CHECK(one_rule_matches({{"path", row.path}}, r) == row.expected);
  }
}

TEST_CASE("method matches exactly") {
  Request r;
  r.method = "POST";
  CHECK(one_rule_matches({{"method", "POST"}}, r));
  r.method = "GET";
  CHECK_FALSE(one_rule_matches({{"method", "POST"}}, r));
  r.method = "post";  // methods are case-sensitive (RFC 9110)
  CHECK_FALSE(one_rule_matches({{"method", "POST"}}, r));
  CHECK(one_rule_matches(json::object(), r));  // no method: any
}

TEST_CASE("header matchers: names case-insensitive, any same-named header may match") {
  struct Row {
    json header;
    std::vector<HeaderField> headers;
    bool expected;
  };
  const json exact = {{"name", "X-Canary"}, {"exact", "1"}};
  const json prefix = {{"name", "x-user"}, {"prefix", "test-"}};
  const json regex = {{"name", "X-Trace"}, {"regex", "[0-9a-f]{4}"}};
  const json present = {{"name", "x-debug"}, {"present", true}};
  const Row rows[] = {
      {exact, {{"x-canary", "1"}}, true},
      {exact, {{"X-CANARY", "1"}}, true},
      {exact, {{"X-Canary", "1 "}}, false},
      {exact, {{"x-canary", "2"}}, false},
      {exact, {{"x-canary", "2"}, {"X-Canary", "1"}}, true},  // the second of two
      {exact, {{"x-other", "1"}}, false},
      {exact, {}, false},
      {prefix, {{"X-User", "test-42"}}, true},
      {prefix, {{"x-user", "prod-42"}}, false},
      {regex, {{"x-trace", "0af9"}}, true},
      {regex, {{"x-trace", "0af9e"}}, false},  // the whole value
      {regex, {{"x-trace", "zzzz"}}, false},
      {present, {{"X-Debug", ""}}, true},
      {present, {{"x-debugging", "1"}}, false},
      {present, {}, false},
  };
  for (const Row &row : rows) {
    CAPTURE(row.header.dump());
    CAPTURE(row.headers.size());
    Request r;
    r.headers = row.headers;
    CHECK(one_rule_matches({{"headers", json::array({row.header})}}, r) == row.expected);
  }

  SUBCASE("every header entry must match, with the path and method") {
    json match = {{"path", {{"prefix", "/api/"}}},
                  {"method", "POST"},
                  {"headers", json::array({exact, present})}};
    Request r;
    r.method = "POST";
    r.target = "/api/pay";
    r.headers = {{"x-canary", "1"}, {"x-debug", "on"}};
    CHECK(one_rule_matches(match, r));
    r.headers = {{"x-canary", "1"}};
    CHECK_FALSE(one_rule_matches(match, r));
    r.headers = {{"x-canary", "1"}, {"x-debug", "on"}};
    r.method = "PUT";
    CHECK_FALSE(one_rule_matches(match, r));
  }
}

TEST_CASE("the first active rule in the set's order wins") {
  FaultEngine engine;
  json late = rule("a/0", {{"path", {{"prefix", "/api/"}}}}, 501);
  late["active_from_ms"] = kNow + 1000;
  engine.update(set_of("v1", json::array({late, rule("b/0", {{"path", {{"exact", "/api/x"}}}}, 502),
                                          rule("c/0", {{"path", {{"prefix", "/api/"}}}}, 503),
                                          rule("d/0", json::object(), 504)})));
  Request r;
  r.target = "/api/x";
  Decision d = engine.decide(r.view(), kNow);
  CHECK(d.rule_id() == "b/0");  // a/0 matches too but is not active yet
  REQUIRE(d.abort != nullptr);
  CHECK(d.abort->status == 502);
  CHECK(d.abort->body == "b/0");
  r.target = "/api/y";
  CHECK(matched(engine, r) == "c/0");
  CHECK(matched(engine, r, kNow + 1000) == "a/0");  // once active, first
  r.target = "/other";
  CHECK(matched(engine, r) == "d/0");
}

TEST_CASE("windows: from (inclusive) until (exclusive), null: no end") {
  FaultEngine engine;
  json bounded = rule("w/0", {{"path", {{"exact", "/w"}}}});
  bounded["active_from_ms"] = 1000;
  bounded["active_until_ms"] = 2000;
  json open = rule("o/0", {{"path", {{"exact", "/o"}}}});
  open["active_from_ms"] = 1000;
  engine.update(set_of("v", json::array({bounded, open})));
  Request w, o;
  w.target = "/w";
  o.target = "/o";
  CHECK(matched(engine, w, 999) == "");
  CHECK(matched(engine, w, 1000) == "w/0");
  CHECK(matched(engine, w, 1999) == "w/0");
  CHECK(matched(engine, w, 2000) == "");
  CHECK(matched(engine, o, 999) == "");
  CHECK(matched(engine, o, 1000) == "o/0");
  CHECK(matched(engine, o, kNow * 10) == "o/0");
}

TEST_CASE("only_policies: the rules of other policies are skipped") {
  const std::string text =
      set_of("v", json::array({rule("a/0", json::object(), 501), rule("b/0", json::object(), 502),
                               rule("c/0", json::object(), 503)}));
  FaultEngine all;
  all.update(text);
  CHECK(all.rule_count() == 3);
  CHECK(matched(all, Request{}) == "a/0");

  FaultEngine some({"c", "b"});
  some.update(text);
  CHECK(some.rule_count() == 2);
  CHECK(some.version() == "v");
  CHECK(matched(some, Request{}) == "b/0");
  FaultEngine none({"z"});
  none.update(text);
  CHECK(none.rule_count() == 0);
  CHECK(matched(none, Request{}) == "");

  // Another policy's rule is not parsed (the proxy does not apply it).
  json bad = rule("a/1", {{"path", {{"regex", "("}}}});
  some.update(set_of("v2", json::array({bad, rule("b/0", json::object(), 502)})));
  CHECK(some.version() == "v2");
  CHECK_THROWS_AS(all.update(set_of("v2", json::array({bad}))), std::invalid_argument);
}

TEST_CASE("a bad rule set is refused naming the field, and the previous one stays") {
  FaultEngine engine;
  engine.update(set_of("good", json::array({rule("p/0", {{"path", {{"exact", "/x"}}}}, 503),
                                            rule("p/1", json::object(), 504)})));
  auto with = [](json r) {
    return set_of("bad", json::array({rule("p/0", json::object()), std::move(r)}));
  };
  json ok = rule("q/0", json::object());
  auto edited = [&](const json::json_pointer &at, json value) {
    json r = ok;
    r[at] = std::move(value);
    return with(r);
  };
  auto erased = [&](const std::string &key) {
    json r = ok;
    r.erase(key);
    return with(r);
  };
  struct Case {
    std::string text;
    std::string names;
  };
  const Case cases[] = {
      {"{\"version\":", "not JSON"},
      {"[]", "rule set: must be a JSON object"},
      {"{\"rules\": []}", "version"},
      {"{\"version\": \"x\", \"rules\": {}}", "rules: must be an array"},
      {set_of("bad", json::array({1})), "rules[0]: must be an object"},
      {edited("/match/path"_json_pointer, {{"regex", "(unclosed"}}),
       "rules[1].match.path.regex (rule \"q/0\"): not a valid RE2 expression"},
      {edited("/match/path"_json_pointer, {{"exact", "/a"}, {"prefix", "/b"}}),
       "rules[1].match.path (rule \"q/0\"): has both exact and prefix"},
      {edited("/match/path"_json_pointer, json::object()), "rules[1].match.path (rule"},
      {edited("/match/path"_json_pointer, {{"present", true}}), "rules[1].match.path (rule"},
      {edited("/match/path/exact"_json_pointer, 7), "rules[1].match.path.exact (rule"},
      {edited("/match/method"_json_pointer, "GE T"), "rules[1].match.method"},
      {edited("/match/headers"_json_pointer, json::array({{{"name", "bad name"}, {"exact", "1"}}})),
       "rules[1].match.headers[0].name"},
      {edited("/match/headers"_json_pointer, json::array({{{"name", "x"}}})),
       "rules[1].match.headers[0] (rule"},
      {edited("/match/headers"_json_pointer, json::array({{{"name", "x"}, {"present", false}}})),
       "rules[1].match.headers[0].present"},
      {edited("/match/headers"_json_pointer,
              json::array({{{"name", "x"}, {"exact", "1"}}, {{"name", "y"}, {"regex", "a{2,1}"}}})),
       "rules[1].match.headers[1].regex"},
      {edited("/fault/percentage"_json_pointer, 100.5), "rules[1].fault.percentage"},
      {edited("/fault/percentage"_json_pointer, -1), "rules[1].fault.percentage"},
      {edited("/fault/percentage"_json_pointer, "50"), "rules[1].fault.percentage"},
      {edited("/fault/abort/status"_json_pointer, 99), "rules[1].fault.abort.status"},
      {edited("/fault/abort/status"_json_pointer, 600), "rules[1].fault.abort.status"},
      {edited("/fault/abort/body"_json_pointer, 5), "rules[1].fault.abort.body"},
      {edited("/fault/delay_ms"_json_pointer, -5), "rules[1].fault.delay_ms"},
      {edited("/fault/delay_ms"_json_pointer, 1.5), "rules[1].fault.delay_ms"},
      {edited("/fault/delay_jitter_ms"_json_pointer, 5), "rules[1].fault.delay_jitter_ms"},
      {edited("/fault"_json_pointer, {{"percentage", 5}}), "rules[1].fault (rule"},
      {edited("/active_from_ms"_json_pointer, "soon"), "rules[1].active_from_ms"},
      {edited("/active_until_ms"_json_pointer, 1e300), "rules[1].active_until_ms"},
      {edited("/id"_json_pointer, "p/0"), "rules[1].id (rule \"p/0\"): repeats"},
      {edited("/id"_json_pointer, ""), "rules[1].id"},
      {edited("/id"_json_pointer, std::string(257, 'x')), "rules[1].id: must have 1 to 256 bytes"},
      {erased("id"), "rules[1].id: is required"},
      {erased("policy"), "rules[1].policy"},
      {erased("fault"), "rules[1].fault"},
  };
  for (const Case &c : cases) {
    CAPTURE(c.text);
    std::string message;
    try {
      engine.update(c.text);
    } catch (const std::invalid_argument &e) {
      message = e.what();
    }
    CAPTURE(message);
    CHECK(message.find(c.names) != std::string::npos);
    CHECK(engine.version() == "good");
    CHECK(engine.rule_count() == 2);
  }
  Request r;
  r.target = "/x";
  Decision d = engine.decide(r.view(), kNow);
  CHECK(d.rule_id() == "p/0");
  REQUIRE(d.abort != nullptr);
  CHECK(d.abort->status == 503);
}

TEST_CASE("percentage is drawn per request: 0 never, 100 always, 30 within binomial bounds") {
  auto injected = [](double percentage, int n) {
    FaultEngine engine;
    engine.update(set_of("v", json::array({rule("p/0", json::object(), 503, percentage)})));
    int count = 0;
    for (int i = 0; i < n; ++i) {
      Decision d = engine.decide(Request{}.view(), kNow);
      REQUIRE(d.rule_id() == "p/0");  // matched, drawn or not
      CHECK(d.inject == (d.abort != nullptr));
      count += d.inject;
    }
    return count;
  };
  CHECK(injected(0, 20000) == 0);
  CHECK(injected(100, 20000) == 20000);
  // 99.9% two-sided: mean +- 3.29 standard deviations (6000 +- 213).
  const int n = 20000;
  const double p = 0.3;
  const double sd = std::sqrt(n * p * (1 - p));
  int count = injected(30, n);
  CAPTURE(count);
  CHECK(count >= n * p - 3.29 * sd);
  CHECK(count <= n * p + 3.29 * sd);
  // A fraction is honoured too: 0.5% over 20,000 (100 +- 33).
  int small = injected(0.5, n);
  CAPTURE(small);
  CHECK(std::abs(small - 100) <= 3.29 * std::sqrt(n * 0.005 * 0.995));
}

TEST_CASE("delay and abort come only with an injection; the jitter spreads the delay") {
  json r = rule("d/0", json::object());
  r["fault"] = {{"percentage", 100}, {"delay_ms", 200}};
  FaultEngine engine;
  engine.update(set_of("v", json::array({r})));
  Decision d = engine.decide(Request{}.view(), kNow);
  CHECK(d.inject);
  CHECK(d.delay == std::chrono::milliseconds(200));
  CHECK(d.abort == nullptr);

  r["fault"]["delay_jitter_ms"] = 20;
  engine.update(set_of("v2", json::array({r})));
  std::set<std::int64_t> seen;
  double sum = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    auto ms = engine.decide(Request{}.view(), kNow).delay.count();
    seen.insert(ms);
    sum += static_cast<double>(ms);
  }
  CHECK(*seen.begin() == 180);  // each of the 41 values has a 1/41 chance a draw
  CHECK(*seen.rbegin() == 220);
  CHECK(seen.size() == 41);
  CHECK(std::abs(sum / n - 200) < 0.5);  // sd of the mean: 11.8 / sqrt(20000) = 0.08

  r["fault"]["delay_ms"] = 5;  // jitter beyond the delay: never below 0
  engine.update(set_of("v3", json::array({r})));
  std::int64_t lowest = 1000;
  int zeros = 0;
  for (int i = 0; i < 5000; ++i) {
    auto ms = engine.decide(Request{}.view(), kNow).delay.count();
    lowest = std::min(lowest, ms);
    zeros += ms == 0;
  }
  CHECK(lowest == 0);
  CHECK(zeros > 5000 * 16 / 41 / 2);  // draws of -20..-5 all give 0: 16 of 41

  r["fault"] = {{"percentage", 0}, {"delay_ms", 200}, {"abort", {{"status", 500}}}};
  engine.update(set_of("v4", json::array({r})));
  d = engine.decide(Request{}.view(), kNow);
  CHECK(d.rule_id() == "d/0");
  CHECK_FALSE(d.inject);
  CHECK(d.delay == std::chrono::milliseconds(0));
  CHECK(d.abort == nullptr);
}

TEST_CASE("counters: exact after a sequence of decisions and errors, kept across updates") {
  FaultEngine engine;
  CHECK(engine.version() == "");
  CHECK(engine.rule_count() == 0);
  Request none;
  none.target = "/none";
  Request hit;
  hit.target = "/hit";
  Request miss_draw;
  miss_draw.target = "/never";
  // Before any rule set: counted, never matched.
  CHECK(engine.decide(none.view(), kNow).rule == nullptr);

  engine.update(set_of("v1", json::array({rule("p/0", {{"path", {{"exact", "/hit"}}}}),
                                          rule("p/1", {{"path", {{"exact", "/never"}}}}, 503, 0),
                                          rule("q/0", {{"path", {{"exact", "/gone"}}}})})));
  for (int i = 0; i < 5; ++i)
    engine.decide(hit.view(), kNow);
  for (int i = 0; i < 3; ++i)
    engine.decide(miss_draw.view(), kNow);
  engine.decide(none.view(), kNow);
  engine.count_error(engine.decide(hit.view(), kNow));
  engine.count_error(engine.decide(miss_draw.view(), kNow));
  engine.count_error(engine.decide(none.view(), kNow));  // an error on no rule: totals only

  CHECK(counters_of(engine, "all") ==
        json{{"total_requests", 13}, {"rules_matched", 10}, {"faults_injected", 6}, {"errors", 3}});
  CHECK(counters_of(engine, "p/0") ==
        json{{"rules_matched", 6}, {"faults_injected", 6}, {"errors", 1}});
  CHECK(counters_of(engine, "p/1") ==
        json{{"rules_matched", 4}, {"faults_injected", 0}, {"errors", 1}});
  CHECK(counters_of(engine, "q/0") ==
        json{{"rules_matched", 0}, {"faults_injected", 0}, {"errors", 0}});

  // v2 keeps p/0 (now for another path), drops p/1 and q/0, adds r/0.
  engine.update(set_of("v2", json::array({rule("p/0", {{"path", {{"prefix", "/h"}}}}),
                                          rule("r/0", json::object())})));
  CHECK(engine.version() == "v2");
  engine.decide(hit.view(), kNow);
  engine.decide(none.view(), kNow);
  CHECK(counters_of(engine, "p/0") ==
        json{{"rules_matched", 7}, {"faults_injected", 7}, {"errors", 1}});
  CHECK(counters_of(engine, "r/0") ==
        json{{"rules_matched", 1}, {"faults_injected", 1}, {"errors", 0}});
  // A removed rule keeps its figures until the engine (the experiment) ends.
  CHECK(counters_of(engine, "p/1") ==
        json{{"rules_matched", 4}, {"faults_injected", 0}, {"errors", 1}});
  CHECK(counters_of(engine, "all") ==
        json{{"total_requests", 15}, {"rules_matched", 12}, {"faults_injected", 8}, {"errors", 3}});
  // The series order: "all", then the rules by id.
  std::vector<std::string> labels;
  const json counters = engine.counters_json();
  for (const json &s : counters["series"])
    labels.push_back(s["labels"]["rule"]);
  CHECK(labels == std::vector<std::string>{"all", "p/0", "p/1", "q/0", "r/0"});
}

TEST_CASE("counters fit the host's 64 series: the busiest rules, the rest as \"other\"") {
  json rules = json::array();
  for (int i = 0; i < 100; ++i)
    rules.push_back(
        rule("p/" + std::to_string(i), {{"path", {{"exact", "/" + std::to_string(i)}}}}));
  FaultEngine engine;
  engine.update(set_of("v", rules));
  // Rule i gets i requests; the 62 busiest are 38..99.
  for (int i = 0; i < 100; ++i) {
    Request r;
    r.target = "/" + std::to_string(i);
    for (int k = 0; k < i; ++k)
      engine.decide(r.view(), kNow);
  }
  json series = engine.counters_json()["series"];
  REQUIRE(series.size() == 64);
  CHECK(series[0]["labels"]["rule"] == "all");
  CHECK(series[0]["counters"]["rules_matched"] == 4950);
  CHECK(series[63]["labels"]["rule"] == "other");
  CHECK(series[63]["counters"]["rules_matched"] == 37 * 38 / 2);  // 0 + 1 + ... + 37
  std::uint64_t sum = 0;
  for (std::size_t i = 1; i < 63; ++i) {
    int n = std::stoi(series[i]["labels"]["rule"].get<std::string>().substr(2));
    CHECK(n >= 38);
    CHECK(series[i]["counters"]["rules_matched"] == n);
    sum += series[i]["counters"]["rules_matched"].get<std::uint64_t>();
  }
  CHECK(sum + 37 * 38 / 2 == 4950);
}

TEST_CASE("concurrent decide() on 4 threads while another thread updates 1,000 times") {
  // Set A: /x -> a/0 aborting 501. Set B: /x -> b/0 aborting 502 after a/0,
  // which B makes inactive. Any decision must be all A's or all B's.
  json a = rule("a/0", {{"path", {{"exact", "/x"}}}}, 501);
  json a_late = a;
  a_late["active_from_ms"] = kNow + 1;
  const std::string set_a = set_of("A", json::array({a, rule("c/0", json::object(), 509)}));
  const std::string set_b =
      set_of("B", json::array({a_late, rule("b/0", {{"path", {{"regex", "/[x]"}}}}, 502),
                               rule("c/0", json::object(), 509)}));
  FaultEngine engine;
  engine.update(set_a);

  std::atomic<bool> stop{false};
  std::atomic<int> inconsistent{0};
  std::atomic<long> decisions{0};
  std::atomic<long> saw_a{0}, saw_b{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      Request r;
      r.target = "/x?t=1";
      r.headers = {{"Host", "example"}};
      while (!stop.load()) {
        Decision d = engine.decide(r.view(), kNow);
        bool ok = d.inject && d.abort &&
                  ((d.rule_id() == "a/0" && d.abort->status == 501 && d.abort->body == "a/0") ||
                   (d.rule_id() == "b/0" && d.abort->status == 502 && d.abort->body == "b/0"));
        if (!ok) inconsistent.fetch_add(1);
        (d.rule_id() == "a/0" ? saw_a : saw_b).fetch_add(1);
        decisions.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 1000; ++i)
    engine.update(i % 2 ? set_a : set_b);
  stop = true;
  for (auto &t : readers)
    t.join();
  CAPTURE(decisions.load());
  CHECK(inconsistent.load() == 0);
  CHECK(decisions.load() > 0);
  CHECK(engine.version() == "A");
  json all = counters_of(engine, "all");
  CHECK(all["total_requests"] == decisions.load());
  CHECK(all["faults_injected"] == decisions.load());
  CHECK(counters_of(engine, "a/0")["rules_matched"] == saw_a.load());
  CHECK(counters_of(engine, "b/0")["rules_matched"] == saw_b.load());
  CHECK(counters_of(engine, "c/0")["rules_matched"] == 0);
}

TEST_CASE("rule_set_from_flags: the classic delay and abort as one rule") {
  using blade::http::rule_set_from_flags;
  using Flags = std::vector<std::pair<std::string, std::string>>;

  SUBCASE("delay with path, method, headers, percent, time and offset") {
    std::string text = rule_set_from_flags("delay", Flags{{"listen", "127.0.0.1:18080"},
                                                          {"upstream", "127.0.0.1:8080"},
                                                          {"path-prefix", "/api/"},
                                                          {"method", "post"},
                                                          {"header", "X-Canary=1, x-user=test"},
                                                          {"percent", "100"},
                                                          {"time", "200"},
                                                          {"offset", "20"}});
    json set = json::parse(text);
    CHECK(set["version"].get<std::string>().size() == 16);
    REQUIRE(set["rules"].size() == 1);
    const json &r = set["rules"][0];
    CHECK(r["id"] == "flags/0");
    CHECK(r["policy"] == "flags");
    CHECK(r["priority"] == 0);
    CHECK(r["active_from_ms"] == 0);
    CHECK(r["active_until_ms"].is_null());
    CHECK(r["match"] == json{{"path", {{"prefix", "/api/"}}},
                             {"method", "POST"},
                             {"headers", json::array({{{"name", "x-canary"}, {"exact", "1"}},
                                                      {{"name", "x-user"}, {"exact", "test"}}})}});
    CHECK(r["fault"] == json{{"percentage", 100}, {"delay_ms", 200}, {"delay_jitter_ms", 20}});

    FaultEngine engine;
    engine.update(text);
    CHECK(engine.version() == set["version"]);
    Request req;
    req.method = "POST";
    req.target = "/api/pay";
    req.headers = {{"x-user", "test"}, {"X-CANARY", "1"}};
    Decision d = engine.decide(req.view(), kNow);
    CHECK(d.rule_id() == "flags/0");
    CHECK(d.inject);
    CHECK(d.delay.count() >= 180);
    CHECK(d.delay.count() <= 220);
    CHECK(d.abort == nullptr);
    req.headers = {{"x-user", "test"}};
    CHECK(engine.decide(req.view(), kNow).rule == nullptr);
    // The same flags always give the same version.
    CHECK(rule_set_from_flags("delay", Flags{{"path-prefix", "/api/"},
                                             {"method", "post"},
                                             {"header", "X-Canary=1"},
                                             {"header", "x-user=test"},
                                             {"time", "200"},
                                             {"offset", "20"}}) == text);
  }

  SUBCASE("abort with code and body; percent defaults to 100; offset 0 adds no jitter") {
    std::string text =
        rule_set_from_flags("abort", Flags{{"path", "/a"}, {"code", "418"}, {"body", "teapot"}});
    json r = json::parse(text)["rules"][0];
    CHECK(r["match"] == json{{"path", {{"exact", "/a"}}}});
    CHECK(r["fault"] ==
          json{{"percentage", 100}, {"abort", {{"status", 418}, {"body", "teapot"}}}});
    FaultEngine engine;
    engine.update(text);
    Request req;
    req.target = "/a?x";
    Decision d = engine.decide(req.view(), kNow);
    REQUIRE(d.abort != nullptr);
    CHECK(d.abort->status == 418);
    CHECK(d.abort->body == "teapot");
    CHECK(json::parse(rule_set_from_flags(
              "delay", Flags{{"time", "5"}, {"offset", "0"}}))["rules"][0]["fault"] ==
          json{{"percentage", 100}, {"delay_ms", 5}});
    CHECK(json::parse(rule_set_from_flags(
              "delay", Flags{{"path-regex", "/v[0-9]+/.*"}, {"time", "5"}}))["rules"][0]["match"] ==
          json{{"path", {{"regex", "/v[0-9]+/.*"}}}});
  }

  SUBCASE("bad flags are named") {
    struct Case {
      std::string action;
      Flags flags;
      std::string names;
    };
    const Case cases[] = {
        {"delay", {{"path", "/a"}, {"path-prefix", "/b"}, {"time", "1"}}, "path, path-prefix:"},
        {"delay",
         {{"path-prefix", "/b"}, {"path-regex", "/c"}, {"time", "1"}},
         "path-prefix, path-regex:"},
        {"delay", {{"path-regex", "/(x"}, {"time", "1"}}, "path-regex: not a valid RE2"},
        {"delay", {{"path", "api"}, {"time", "1"}}, "path: must start with '/'"},
        {"delay", {{"header", "X-A"}, {"time", "1"}}, "header: \"X-A\" is not Name=value"},
        {"delay", {{"header", "a=1,X A=2"}, {"time", "1"}}, "header: \"X A\" is not a header"},
        {"delay", {{"header", "=2"}, {"time", "1"}}, "header: \"\" is not a header name"},
        {"delay", {{"method", "GE T"}, {"time", "1"}}, "method:"},
        {"delay", {{"percent", "101"}, {"time", "1"}}, "percent: must be from 0 to 100"},
        {"delay", {{"percent", "3x"}, {"time", "1"}}, "percent: \"3x\" is not an integer"},
        {"delay", {}, "time: is required"},
        {"delay", {{"time", "-1"}}, "time: must be from 0"},
        {"delay", {{"time", "600001"}}, "time: must be from 0 to 600000"},
        {"delay", {{"time", "1"}, {"offset", "-2"}}, "offset:"},
        {"abort", {}, "code: is required"},
        {"abort", {{"code", "99"}}, "code: must be from 200 to 599"},
        {"abort", {{"code", ""}}, "code: \"\" is not an integer"},
        {"proxy", {}, "action:"},
    };
    for (const Case &c : cases) {
      CAPTURE(c.names);
      std::string message;
      try {
        rule_set_from_flags(c.action, c.flags);
      } catch (const std::invalid_argument &e) {
        message = e.what();
      }
      CAPTURE(message);
      CHECK(message.find(c.names) != std::string::npos);
    }
  }
}
