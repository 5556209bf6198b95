// GET /metrics: every line must parse as the Prometheus text format 0.0.4,
// and the numbers must match what was done to a real bladed.
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../support/prometheus_value.hpp"
#include "../support/temp_dir.hpp"
#include "blade/core/experiment/event_bus.hpp"
#include "blade/core/store/store.hpp"
#include "bladed_process.hpp"
#include "experiment_calls.hpp"
#include "routes/metrics.hpp"

namespace fs = std::filesystem;
using blade::test::auth;
using blade::test::BladedProcess;
using blade::test::create;
using blade::test::destroy;
using blade::test::with_test_plugins;
using blade::test::prometheus::Exposition;
using blade::test::prometheus::Labels;
using blade::test::prometheus::parse_exposition;
using nlohmann::json;

namespace {

// A histogram's buckets never decrease and +Inf equals _count.
void check_histogram(const Exposition &x, const std::string &name) {
  double last = 0;
  std::optional<double> inf;
  for (const auto &s : x.samples) {
    if (s.name != name + "_bucket") continue;
    CHECK(s.value >= last);
    last = s.value;
    if (s.labels.at("le") == "+Inf") inf = s.value;
  }
  REQUIRE(inf);
  CHECK(*inf == x.value(name + "_count"));
  CHECK(x.value(name + "_sum").value_or(-1) >= 0);
}

Exposition scrape(const BladedProcess &d) {
  auto res = d.client().Get("/metrics", auth());
  REQUIRE(res);
  REQUIRE(res->status == 200);
  CHECK(res->get_header_value("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  try {
    return parse_exposition(res->body);
  } catch (const std::exception &e) {
    FAIL(e.what() << "\n" << res->body);
  }
  return {};
}

}  // namespace

TEST_CASE("the test's exposition parser accepts the format and refuses what is not") {
  auto x = parse_exposition(
      "# HELP a_total Help text.\n"
      "# TYPE a_total counter\n"
      "a_total{x=\"q\\\"uote\",y=\"back\\\\slash\",z=\"new\\nline\"} 3\n"
      "a_total 1e-05 1700000000000\n"
      "# just a comment\n"
      "# TYPE h histogram\n"
      "h_bucket{le=\"+Inf\"} 2\n"
      "h_sum 0.5\n"
      "h_count 2\n");
  REQUIRE(x.samples.size() == 5);
  CHECK(x.samples[0].labels.at("x") == "q\"uote");
  CHECK(x.samples[0].labels.at("y") == "back\\slash");
  CHECK(x.samples[0].labels.at("z") == "new\nline");
  CHECK(x.samples[1].value == doctest::Approx(1e-05));
  CHECK(x.value("h_count") == 2);

  for (const char *bad : {
           "a 1\n",                                     // no TYPE
           "# TYPE a gauge\na{x=\"1} 1\n",              // unterminated value
           "# TYPE a gauge\na{x=\"\\t\"} 1\n",          // unknown escape
           "# TYPE a gauge\na{x=\"1\"}1\n",             // no space
           "# TYPE a gauge\na one\n",                   // not a number
           "# TYPE a gauge\na{x=\"1\" y=\"2\"} 1\n",    // no comma
           "# TYPE a gauge\na 1\n# TYPE a gauge\n",     // TYPE twice
           "# TYPE a gauge\na 1",                       // no final newline
           "# TYPE a nonsense\na 1\n",                  // unknown type
           "# TYPE h counter\nh_bucket{le=\"1\"} 1\n",  // _bucket of a counter
       }) {
    INFO(bad);
    CHECK_THROWS(parse_exposition(bad));
  }
}

TEST_CASE("metrics count experiments, latencies, executor errors and requests") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto c = d.client();

  auto a = create(c, "cmarker", "touch", {{"path", d.dir / "a"}});
  auto b = create(c, "cmarker", "touch", {{"path", d.dir / "b"}});
  REQUIRE(a.status == 201);
  REQUIRE(b.status == 201);
  CHECK(fs::exists(d.dir / "a"));
  CHECK(fs::exists(d.dir / "b"));
  auto failing = create(c, "cmarker", "touch", {{"path", d.dir / "c"}, {"fail-on-host", true}});
  CHECK(failing.status == 422);
  CHECK(failing.body["data"]["status"] == "failed");
  const auto uid_a = a.uid();
  REQUIRE(destroy(c, uid_a).status == 200);
  CHECK_FALSE(fs::exists(d.dir / "a"));

  auto x = scrape(d);
  CHECK(x.value("blade_experiments", {{"status", "created"}}) == 0);
  CHECK(x.value("blade_experiments", {{"status", "running"}}) == 1);
  CHECK(x.value("blade_experiments", {{"status", "destroying"}}) == 0);
  CHECK(x.value("blade_experiments", {{"status", "destroyed"}}) == 1);
  CHECK(x.value("blade_experiments", {{"status", "failed"}}) == 1);
  CHECK(x.value("blade_active_faults") == 1);
  CHECK(x.types.at("blade_experiments") == "gauge");

  CHECK(x.types.at("blade_experiment_create_seconds") == "histogram");
  CHECK(x.value("blade_experiment_create_seconds_count").value_or(0) >= 3);
  check_histogram(x, "blade_experiment_create_seconds");
  CHECK(x.value("blade_experiment_destroy_seconds_count").value_or(0) >= 1);
  check_histogram(x, "blade_experiment_destroy_seconds");

  CHECK(x.types.at("blade_executor_errors_total") == "counter");
  CHECK(x.value("blade_executor_errors_total", {{"executor", "inprocess:c-marker"}}) == 1);

  CHECK(x.types.at("blade_http_requests_total") == "counter");
  CHECK(x.value("blade_http_requests_total",
                {{"method", "POST"}, {"route", "/v1/experiments"}, {"code", "201"}}) == 2);
  CHECK(x.value("blade_http_requests_total",
                {{"method", "POST"}, {"route", "/v1/experiments"}, {"code", "422"}}) == 1);
  CHECK(x.value("blade_http_requests_total",
                {{"method", "DELETE"}, {"route", "/v1/experiments/{uid}"}, {"code", "200"}}) == 1);

  auto version = json::parse(c.Get("/v1/health")->body)["data"]["version"].get<std::string>();
  CHECK(x.value("blade_build_info", {{"version", version}}) == 1);
  CHECK(x.value("process_resident_memory_bytes").value_or(0) > 1e6);
  CHECK(x.value("process_cpu_seconds_total").value_or(-1) >= 0);
  CHECK(x.value("process_open_fds").value_or(0) > 0);

  // The scrape itself is counted by the next one.
  auto again = scrape(d);
  CHECK(again.value("blade_http_requests_total",
                    {{"method", "GET"}, {"route", "/metrics"}, {"code", "200"}}) >= 1);
}

TEST_CASE("metrics count the store's transactions and statements as they happen") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto c = d.client();
  const auto before = scrape(d);
  CHECK(before.types.at("blade_store_transactions_total") == "counter");
  CHECK(before.types.at("blade_store_statements_total") == "counter");
  const double transactions = before.value("blade_store_transactions_total").value_or(-1);
  const double statements = before.value("blade_store_statements_total").value_or(-1);
  CHECK(transactions >= 0);
  CHECK(statements >= transactions);

  REQUIRE(create(c, "cmarker", "touch", {{"path", d.dir / "a"}}).status == 201);
  const auto after = scrape(d);
  // A create commits at least its row.
  CHECK(after.value("blade_store_transactions_total").value_or(0) > transactions);
  CHECK(after.value("blade_store_statements_total").value_or(0) > statements);
}

TEST_CASE("plugins' live counters (ABI 1.5) are in /metrics and with the experiment until destroy") {
  BladedProcess d(with_test_plugins({"live_counters.so", "c_marker.so"}));
  auto c = d.client();
  // A label value with each character the exposition format escapes.
  const std::string rule = "check\"out\\0\nend";
  auto made = create(c, "live", "count", {{"rule", rule}});
  INFO(made.body.dump());
  REQUIRE(made.status == 201);
  const std::string uid = made.uid();
  const Labels mine = {{"plugin", "live-counters"}, {"uid", uid}, {"rule", rule}};

  // The plugin's thread reports every 10 ms: the scraped figure grows.
  std::optional<double> first;
  REQUIRE(blade::test::eventually([&] {
    first = scrape(d).value("blade_plugin_total_requests_total", mine);
    return first.value_or(0) >= 2;
  }));
  double later = 0;
  REQUIRE(blade::test::eventually([&] {
    later = scrape(d).value("blade_plugin_total_requests_total", mine).value_or(0);
    return later > *first;
  }));
  auto x = scrape(d);
  CHECK(x.types.at("blade_plugin_total_requests_total") == "counter");
  CHECK(x.types.at("blade_plugin_errors_total") == "counter");
  CHECK(x.help.count("blade_plugin_total_requests_total") == 1);
  CHECK(x.value("blade_plugin_errors_total", mine) == 0);

  // With the experiment, one by one and in the list, while it runs.
  json one = blade::test::experiment(c, uid);
  INFO(one.dump());
  REQUIRE(one.contains("counters"));
  const json &series = one["counters"]["series"];
  REQUIRE(series.size() == 1);
  CHECK(series[0]["labels"] == json({{"rule", rule}}));
  CHECK(series[0]["counters"]["total_requests"].get<double>() >= later);
  CHECK(series[0]["counters"]["errors"] == 0);
  auto list = json::parse(c.Get("/v1/experiments", auth())->body);
  REQUIRE(list["data"]["items"].size() == 1);
  CHECK(list["data"]["items"][0].contains("counters"));

  // Gone once the destroy returned: from the answer, the record and the scrape.
  auto gone = destroy(c, uid);
  REQUIRE(gone.status == 200);
  CHECK_FALSE(gone.body["data"].contains("counters"));
  CHECK_FALSE(blade::test::experiment(c, uid).contains("counters"));
  auto after = scrape(d);
  CHECK_FALSE(after.value("blade_plugin_total_requests_total", mine));
  CHECK(after.types.count("blade_plugin_total_requests_total") == 0);

  // A report breaking the rules is refused; the good one before it stands.
  auto bad = create(c, "live", "bad", {{"then-fail", false}});
  REQUIRE(bad.status == 201);
  CHECK(bad.body["data"]["result"] == json({{"good", true}, {"bad", false}}));
  CHECK(blade::test::experiment(c, bad.uid())["counters"] ==
        json::parse(R"({"series":[{"labels":{},"counters":{"errors":1}}]})"));
  CHECK(scrape(d).value("blade_plugin_errors_total",
                        {{"plugin", "live-counters"}, {"uid", bad.uid()}}) == 1);

  // An experiment whose plugin reports nothing has no "counters" at all.
  auto quiet = create(c, "cmarker", "touch", {{"path", d.dir / "quiet"}});
  REQUIRE(quiet.status == 201);
  CHECK_FALSE(quiet.body["data"].contains("counters"));
  CHECK_FALSE(blade::test::experiment(c, quiet.uid()).contains("counters"));
}

TEST_CASE("metrics need a token") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto res = d.client().Get("/metrics");
  REQUIRE(res);
  CHECK(res->status == 401);
}

TEST_CASE("Metrics escapes label values and counts destroy failures from events") {
  blade::test::TempDir dir{"metrics-unit"};
  blade::Store store(dir / "blade.db");
  blade::EventBus events;
  blade::server::Metrics metrics(store, events);

  const std::string odd = "/a\"b\\c\nd";
  metrics.observe_request("GET", odd, 200);
  metrics.observe_request("GET", odd, 200);
  metrics.observe_create(std::chrono::milliseconds(3));
  metrics.observe_create(std::chrono::seconds(100));
  // A destroy attempt that failed, one that succeeded, a failed create: the
  // service names the executor on the events that report a failed call.
  auto data_of = [](const char *status) {
    return std::make_shared<const std::string>(nlohmann::json{{"status", status}}.dump());
  };
  events.publish("experiment", data_of("destroying"), "x\"y");
  events.publish("experiment", data_of("destroyed"));
  events.publish("experiment", data_of("failed"), "x\"y");
  events.publish("experiment", data_of("running"));

  Exposition x;
  const auto text = metrics.render();
  try {
    x = parse_exposition(text);
  } catch (const std::exception &e) {
    FAIL(e.what() << "\n" << text);
  }
  CHECK(x.value("blade_http_requests_total", {{"route", odd}, {"code", "200"}}) == 2);
  CHECK(x.value("blade_executor_errors_total", {{"executor", "x\"y"}}) == 2);
  CHECK_FALSE(x.value("blade_executor_errors_total", {{"executor", "z"}}));
  CHECK(x.value("blade_experiment_create_seconds_bucket", {{"le", "0.005"}}) == 1);
  CHECK(x.value("blade_experiment_create_seconds_bucket", {{"le", "60"}}) == 1);
  CHECK(x.value("blade_experiment_create_seconds_bucket", {{"le", "+Inf"}}) == 2);
  CHECK(x.value("blade_experiment_create_seconds_sum") == doctest::Approx(100.003));
  CHECK(x.value("blade_experiments", {{"status", "running"}}) == 0);
}
