// The http plugin's proxy through a real bladed with only http.so loaded:
// experiments created and destroyed over the API, their effect measured
// with real clients against a real upstream on loopback, and what a crash
// of the daemon leaves (nothing: the proxy dies with it).
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bladed_process.hpp"
#include "experiment_calls.hpp"
#include "proxy_fixtures.hpp"

namespace fs = std::filesystem;
using namespace blade::test;
using namespace blade::test::http;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

BladedProcess daemon_with_http() {
  return BladedProcess(only_plugin(fs::path(BLADE_BUILT_PLUGIN_DIR) / "http.so"));
}

int port_of(const Answer &a) {
  const std::string listen = a.body["data"]["result"].value("listen", "");
  REQUIRE_MESSAGE(listen.rfind("127.0.0.1:", 0) == 0, a.body.dump());
  return std::stoi(listen.substr(listen.rfind(':') + 1));
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("http delay and http abort through bladed: the effect on a real client, the real port, the destroy report") {
  Upstream up;
  BladedProcess d = daemon_with_http();
  auto c = d.client();

  const Answer delay = create(c, "http", "delay",
                              {{"listen", "127.0.0.1:0"}, {"upstream", up.address()},
                               {"path", "/slow"}, {"time", "150"}});
  REQUIRE_MESSAGE(delay.status == 201, delay.body.dump());
  const int port = port_of(delay);
  CHECK(port > 0);
  CHECK(delay.body["data"]["result"]["upstream"] == up.address());
  auto via = keep_alive_client(port);
  auto t0 = std::chrono::steady_clock::now();
  auto slow = via.Get("/slow");
  const double slow_ms = ms_since(t0);
  t0 = std::chrono::steady_clock::now();
  auto fast = via.Get("/fast");
  const double fast_ms = ms_since(t0);
  REQUIRE(slow);
  REQUIRE(fast);
  CHECK(slow->body == "GET /slow");
  CHECK(fast->body == "GET /fast");
  CHECK(slow_ms >= 150);
  CHECK(slow_ms < 400);
  CHECK(fast_ms < 100);

  const Answer abort = create(c, "http", "abort",
                              {{"listen", "127.0.0.1:0"}, {"upstream", up.address()},
                               {"method", "POST"}, {"code", "503"}, {"body", "chaos"}});
  REQUIRE_MESSAGE(abort.status == 201, abort.body.dump());
  auto to_abort = keep_alive_client(port_of(abort));
  auto posted = to_abort.Post("/x", "data", "text/plain");
  REQUIRE(posted);
  CHECK(posted->status == 503);
  CHECK(posted->body == "chaos");
  auto got = to_abort.Get("/x");
  REQUIRE(got);
  CHECK(got->status == 200);

  const Answer gone = destroy(c, abort.uid());
  CHECK(gone.status == 200);
  const json report = experiment(c, abort.uid())["destroy_result"];
  INFO(report.dump());
  CHECK(report["stopped"] == true);
  bool found = false;
  for (const auto &s : report["counters"]["series"])
    if (s["labels"]["rule"] == "all") {
      found = true;
      CHECK(s["counters"]["total_requests"] == 2);
      CHECK(s["counters"]["faults_injected"] == 1);
    }
  CHECK(found);
  CHECK(!port_open(port_of(abort)));
  check_destroyed(c, delay.uid());
  CHECK(!port_open(port));  // the delay proxy's listener went with it
}

TEST_CASE("the live counters of a running proxy are in /metrics") {
  Upstream up;
  BladedProcess d = daemon_with_http();
  auto c = d.client();
  const Answer a = create(c, "http", "abort",
                          {{"listen", "127.0.0.1:0"}, {"upstream", up.address()}, {"code", "500"},
                           {"percent", "100"}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  auto via = keep_alive_client(port_of(a));
  for (int i = 0; i < 4; ++i) via.Get("/m");
  const std::string want = "blade_plugin_faults_injected_total{plugin=\"http\",uid=\"" + a.uid() +
                           "\",rule=\"all\"} 4";
  std::string metrics;
  bool seen = false;
  // Reported within about a second; polled gently (the API rate-limits).
  for (int i = 0; i < 25 && !seen; ++i) {
    auto m = c.Get("/metrics", auth());
    metrics = m ? m->body : "";
    seen = metrics.find(want) != std::string::npos;
    if (!seen) std::this_thread::sleep_for(200ms);
  }
  CHECK_MESSAGE(seen, "the daemon shows no plugin counters for the proxy (the host side of "
                      "report_counters, plugin ABI 1.5, missing?); looked for: "
                          << want);
  check_destroyed(c, a.uid());
}

TEST_CASE("destroy drains a delayed request in flight: it completes, then the port is closed") {
  Upstream up;
  BladedProcess d = daemon_with_http();
  auto c = d.client();
  const Answer a = create(c, "http", "delay",
                          {{"listen", "127.0.0.1:0"}, {"upstream", up.address()}, {"time", "600"},
                           {"drain-timeout", "5s"}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  const int port = port_of(a);
  std::optional<httplib::Result> in_flight;
  std::thread client([&] {
    auto via = keep_alive_client(port);
    in_flight.emplace(via.Get("/held"));
  });
  std::this_thread::sleep_for(200ms);
  const auto t0 = std::chrono::steady_clock::now();
  const Answer gone = destroy(c, a.uid());
  const double took = ms_since(t0);
  client.join();
  CHECK(gone.status == 200);
  REQUIRE(in_flight);
  REQUIRE(*in_flight);
  CHECK((*in_flight)->status == 200);
  CHECK((*in_flight)->body == "GET /held");
  CHECK(took >= 250);  // it waited for the held request
  CHECK(!port_open(port));
}

TEST_CASE("bad flags are a 400 naming the flag; a busy listen address is a 409") {
  Upstream up;
  BladedProcess d = daemon_with_http();
  auto c = d.client();
  const Answer bad_listen = create(c, "http", "abort",
                                   {{"listen", "nowhere"}, {"upstream", up.address()}, {"code", "503"}});
  CHECK(bad_listen.status == 400);
  CHECK(bad_listen.field() == "flags.listen");
  const Answer bad_upstream = create(c, "http", "delay",
                                     {{"listen", "127.0.0.1:0"}, {"upstream", "[::1:80"}, {"time", "5"}});
  CHECK(bad_upstream.status == 400);
  CHECK(bad_upstream.field() == "flags.upstream");
  const Answer self = create(c, "http", "delay",
                             {{"listen", "127.0.0.1:" + std::to_string(free_port())},
                              {"upstream", "127.0.0.1:1"}, {"time", "5"}});
  CHECK(self.status == 201);  // not the same port: fine
  if (self.status == 201) check_destroyed(c, self.uid());
  const Answer loop = create(c, "http", "delay",
                             {{"listen", "0.0.0.0:18123"}, {"upstream", "127.0.0.1:18123"}, {"time", "5"}});
  CHECK(loop.status == 400);
  CHECK(loop.field() == "flags.upstream");
  const Answer busy = create(c, "http", "abort",
                             {{"listen", "127.0.0.1:" + std::to_string(up.port())},
                              {"upstream", "127.0.0.1:9"}, {"code", "503"}});
  CHECK(busy.status == 409);
  CHECK(busy.message().find("already in use") != std::string::npos);
}

TEST_CASE("bladed killed while a proxy runs: the restarted daemon finds it gone and the port is free") {
  Upstream up;
  BladedProcess d = daemon_with_http();
  auto c = d.client();
  const Answer a = create(c, "http", "delay",
                          {{"listen", "127.0.0.1:0"}, {"upstream", up.address()}, {"time", "1"}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  const int port = port_of(a);
  CHECK(port_open(port));
  d.crash();
  CHECK(!port_open(port));
  d.restart();
  auto c2 = d.client();
  CHECK(wait_destroyed(c2, a.uid()) == "destroyed");
  const json report = experiment(c2, a.uid())["destroy_result"];
  CHECK(report == json{{"already_gone", true}});
  CHECK(!port_open(port));
}

TEST_CASE("http proxy through bladed follows the daemon's policies live, all or those named") {
  Upstream up;
  BladedProcess d = daemon_with_http();
  auto c = d.client();
  const json policy = {
      {"metadata", {{"name", "proxy-test"}}},
      {"spec",
       {{"rules", json::array({{{"match", {{"path", {{"prefix", "/p"}}}}},
                                {"fault", {{"abort", {{"httpStatus", 507}, {"body", "policy"}}}}}}})}}}};
  auto made = post_json(c, "/v1/policies", policy);
  REQUIRE(made);
  REQUIRE_MESSAGE(made->status == 201, "POST /v1/policies answered " << made->status
                                           << " (the policy API and its rule-set topic must be in "
                                              "this build for http proxy): "
                                           << made->body);

  const Answer all = create(c, "http", "proxy", {{"listen", "127.0.0.1:0"}, {"upstream", up.address()}});
  REQUIRE_MESSAGE(all.status == 201, all.body.dump());
  CHECK(all.body["data"]["result"]["policies"] == "all");
  const Answer other = create(c, "http", "proxy",
                              {{"listen", "127.0.0.1:0"}, {"upstream", up.address()}, {"policy", "another"}});
  REQUIRE_MESSAGE(other.status == 201, other.body.dump());
  CHECK(other.body["data"]["result"]["policies"] == json::array({"another"}));

  auto via_all = keep_alive_client(port_of(all));
  auto via_other = keep_alive_client(port_of(other));
  auto got = via_all.Get("/p/1");
  REQUIRE(got);
  CHECK(got->status == 507);
  CHECK(got->body == "policy");
  got = via_other.Get("/p/1");
  REQUIRE(got);
  CHECK(got->status == 200);  // only the rules of policy "another" apply there

  // Deleted: the proxy follows at once (the next requests are forwarded).
  auto deleted = c.Delete("/v1/policies/proxy-test", auth());
  REQUIRE(deleted);
  CHECK(deleted->status == 200);
  bool forwarded = false;
  for (int i = 0; i < 50 && !forwarded; ++i) {
    got = via_all.Get("/p/1");
    forwarded = got && got->status == 200;
    if (!forwarded) std::this_thread::sleep_for(10ms);
  }
  CHECK(forwarded);
  check_destroyed(c, all.uid());
  check_destroyed(c, other.uid());
  CHECK(!port_open(port_of(all)));
  CHECK(!port_open(port_of(other)));
}
