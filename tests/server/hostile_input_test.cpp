// Hostile input against a real bladed: JSON nested to take a recursive walk
// down, and query parameters no route reads. Both lists of routes come from
// the routes bladed registers, so a new route is covered by being added.
#include <filesystem>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bladed_process.hpp"
#include "registered_routes.hpp"

namespace fs = std::filesystem;
using namespace blade::test;
using nlohmann::json;

namespace {

// The route's path with each {param} filled in.
std::string concrete(const std::string &path) {
  std::string out;
  for (std::size_t i = 0; i < path.size();) {
    if (path[i] != '{') {
      out += path[i++];
      continue;
    }
    const auto close = path.find('}', i);
    out += path.substr(i + 1, close - i - 1) == "name" ? "c-marker" : "0123456789abcdef";
    i = close + 1;
  }
  return out;
}

std::string nested_arrays(std::size_t levels) {
  return std::string(levels, '[') + std::string(levels, ']');
}

// The error an answer carries: the envelope's message and first detail's
// field, or ChaosBlade's Response error (which has no details).
struct Refusal {
  std::string message;
  std::string field;
};

Refusal refusal_of(const httplib::Response &res) {
  auto body = json::parse(res.body, nullptr, false);
  Refusal r;
  if (!body.is_object()) return r;
  if (body.contains("message") && body["message"].is_string()) r.message = body["message"];
  if (body.contains("error") && body["error"].is_string()) r.message = body["error"];
  if (body.contains("details") && body["details"].is_array() && !body["details"].empty())
    r.field = body["details"][0].value("field", "");
  return r;
}

bool is_chaosblade_route(const std::string &path) {
  return path.rfind("/api/v1/", 0) == 0 || path == "/chaosblade";
}

void check_alive(httplib::Client &c) {
  auto health = c.Get("/v1/health");
  REQUIRE_MESSAGE(health, "bladed no longer answers");
  CHECK(health->status == 200);
}

}  // namespace

TEST_CASE("deeply nested JSON on every POST and PUT route: 400 naming the body, nothing changed") {
  const auto routes = registered_routes();
  BladedProcess d(with_test_plugins({"c_marker.so"}, {"--rate-limit", "0"}));
  auto c = d.client();
  // 60,000 levels: far past what a recursive walk survives on a thread stack.
  const std::string deep =
      R"({"target":"jvm","type":"jvm","flags":{"pid":)" + nested_arrays(60000) + "}}";

  int posted = 0;
  for (const auto &route : routes) {
    if (route.method != "POST" && route.method != "PUT") continue;
    CAPTURE(route.method);
    CAPTURE(route.path);
    ++posted;
    auto res = route.method == "PUT"
                   ? c.Put(concrete(route.path).c_str(), auth(), deep, "application/json")
                   : c.Post(concrete(route.path).c_str(), auth(), deep, "application/json");
    REQUIRE_MESSAGE(res, "no answer (bladed crashed?)");
    check_alive(c);
    // The routes reading JSON refuse it at parse; the others never parse it
    // (reload, and /chaosblade, which reads a form).
    const bool reads_json = route.path != "/v1/plugins/reload" && route.path != "/chaosblade";
    if (!reads_json) continue;
    const Refusal r = refusal_of(*res);
    CHECK(res->status == 400);
    CHECK(r.message.find("body: nested deeper than 64 levels") != std::string::npos);
    if (!is_chaosblade_route(route.path)) CHECK(r.field == "body");
  }
  CHECK(posted >= 6);

  auto experiments = c.Get("/v1/experiments", auth());
  REQUIRE(experiments);
  CHECK(json::parse(experiments->body)["data"]["total"] == 0);
  auto preparations = c.Get("/v1/preparations", auth());
  REQUIRE(preparations);
  CHECK(json::parse(preparations->body)["data"]["total"] == 0);
  auto policies = c.Get("/v1/policies", auth());
  REQUIRE(policies);
  CHECK(json::parse(policies->body)["data"]["total"] == 0);
}

TEST_CASE("the depth cap is 64 levels: 64 parse (and fail later, on the flag), 65 do not") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto c = d.client();
  // The body is level 1, flags level 2: 62 arrays make 64 levels.
  auto body = [](std::size_t arrays) {
    return R"({"target":"cmarker","action":"touch","flags":{"path":)" + nested_arrays(arrays) +
           "}}";
  };
  auto at_cap = c.Post("/v1/experiments", auth(), body(62), "application/json");
  REQUIRE(at_cap);
  CHECK(at_cap->status == 400);
  CHECK(refusal_of(*at_cap).field == "flags.path");

  auto over = c.Post("/v1/experiments", auth(), body(63), "application/json");
  REQUIRE(over);
  CHECK(over->status == 400);
  CHECK(refusal_of(*over).field == "body");
  // Brackets inside a string are text, not nesting.
  auto in_string =
      c.Post("/v1/experiments", auth(),
             R"({"target":"cmarker","action":"touch","flags":{"path":")" +
                 std::string(100, '[') + R"("}})",
             "application/json");
  REQUIRE(in_string);
  CHECK(refusal_of(*in_string).field != "body");
  check_alive(c);
}

TEST_CASE("an unknown query parameter is refused on every route, naming it, before the handler") {
  const auto routes = registered_routes();
  BladedProcess d(with_test_plugins({"c_marker.so"}, {"--rate-limit", "0"}));
  auto c = d.client();

  for (const auto &route : routes) {
    CAPTURE(route.method);
    CAPTURE(route.path);
    const std::string path = concrete(route.path) + "?no_such_parameter=1";
    httplib::Result res{nullptr, httplib::Error::Unknown};
    if (route.method == "GET") {
      if (route.path == "/v1/events") {
        // Read the head only: a stream that opened would never end.
        std::string body;
        httplib::Response head;
        res = c.Get(
            path.c_str(), auth(),
            [&](const httplib::Response &r) {
              head = r;
              return r.status != 200;
            },
            [&](const char *data, std::size_t size) {
              body.append(data, size);
              return true;
            });
        REQUIRE(head.status == 400);
        head.body = body;
        CHECK(refusal_of(head).field == "no_such_parameter");
        continue;
      }
      res = c.Get(path.c_str(), auth());
    } else if (route.method == "POST") {
      res = c.Post(path.c_str(), auth(), "{}", "application/json");
    } else if (route.method == "PUT") {
      res = c.Put(path.c_str(), auth(), "{}", "application/json");
    } else if (route.method == "DELETE") {
      res = c.Delete(path.c_str(), auth());
    } else {
      FAIL("no way to call " << route.method);
    }
    REQUIRE_MESSAGE(res, "no answer");
    const Refusal r = refusal_of(*res);
    CHECK(r.message.rfind("no_such_parameter: unknown query parameter", 0) == 0);
    if (route.path == "/chaosblade") {
      CHECK(res->status == 200);  // ChaosBlade's server answers every error 200
    } else {
      CHECK(res->status == 400);
      if (!is_chaosblade_route(route.path)) CHECK(r.field == "no_such_parameter");
    }
  }
}

TEST_CASE("POST /v1/experiments?dry_run=true is refused, not run as a real create") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto c = d.client();
  const fs::path marker = d.dir / "marker";
  auto res = post_json(c, "/v1/experiments?dry_run=true", marker_experiment(marker));
  REQUIRE(res);
  CHECK(res->status == 400);
  CHECK(refusal_of(*res).field == "dry_run");
  CHECK_FALSE(fs::exists(marker));
  auto list = c.Get("/v1/experiments", auth());
  REQUIRE(list);
  CHECK(json::parse(list->body)["data"]["total"] == 0);

  // The parameters a route declares still work, and a viewer without the
  // right is refused for that first (403), not for the parameter.
  auto listed = c.Get("/v1/experiments?limit=5&order=asc", auth());
  REQUIRE(listed);
  CHECK(listed->status == 200);
  auto anonymous = c.Get("/v1/experiments?no_such_parameter=1");
  REQUIRE(anonymous);
  CHECK(anonymous->status == 401);
}
