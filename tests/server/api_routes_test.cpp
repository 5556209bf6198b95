// Routes beside experiments: specs, plugin spec YAML, preparations, request
// ids, and HTTPS.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bladed_process.hpp"

namespace fs = std::filesystem;
using blade::test::auth;
using blade::test::BladedOptions;
using blade::test::BladedProcess;
using blade::test::post_json;
using nlohmann::json;

TEST_CASE("specs: every (scope, target, action) with its flags; a plugin's YAML as it ships") {
  BladedProcess d;
  auto c = d.client();
  auto specs = c.Get("/v1/specs", auth());
  REQUIRE(specs->status == 200);
  auto items = json::parse(specs->body)["data"];
  REQUIRE(items.size() == 1);
  CHECK(items[0]["scope"] == "host");
  CHECK(items[0]["target"] == "cmarker");
  CHECK(items[0]["action"] == "touch");
  CHECK(items[0]["aliases"] == json::array({"t"}));
  CHECK(items[0]["executor"] == "inprocess:c-marker");
  json path_flag;
  for (const auto &f : items[0]["flags"])
    if (f["name"] == "path") path_flag = f;
  CHECK(path_flag["required"] == true);
  CHECK(path_flag["type"] == "path");

  auto yaml = c.Get("/v1/plugins/c-marker/spec", auth());
  REQUIRE(yaml->status == 200);
  CHECK(yaml->get_header_value("Content-Type") == "application/yaml");
  CHECK(yaml->body.find("target: cmarker") != std::string::npos);
  auto none = c.Get("/v1/plugins/init-fail/spec", auth());  // refused: no spec served
  CHECK(none->status == 404);
  CHECK(json::parse(none->body)["code"] == "NOT_FOUND");
  CHECK(c.Get("/v1/specs")->status == 401);
}

TEST_CASE("preparations: validated, listed, and NOT_FOUND for a type no executor serves") {
  BladedProcess d;
  auto c = d.client();
  auto bad = c.Post("/v1/preparations", auth(), R"({"flags":{}})", "application/json");
  CHECK(bad->status == 400);
  CHECK(json::parse(bad->body)["details"][0]["field"] == "type");
  CHECK(c.Post("/v1/preparations", auth(), R"({"type":"jvm","x":1})", "application/json")->status ==
        400);
  auto jvm = post_json(c, "/v1/preparations", {{"type", "jvm"}, {"flags", {{"pid", 1}}}});
  CHECK(jvm->status == 404);
  CHECK(json::parse(jvm->body)["code"] == "NOT_FOUND");
  auto list = c.Get("/v1/preparations?status=running", auth());
  REQUIRE(list->status == 200);
  CHECK(json::parse(list->body)["data"]["total"] == 0);
  CHECK(c.Get("/v1/preparations?status=bogus", auth())->status == 400);
  CHECK(c.Get("/v1/preparations/0123456789abcdef", auth())->status == 404);
  CHECK(c.Delete("/v1/preparations/0123456789abcdef", auth())->status == 404);
}

TEST_CASE("every response carries a request id; a plain client id is echoed, others replaced") {
  BladedProcess d;
  auto c = d.client();
  auto fresh = c.Get("/v1/health");
  CHECK(fresh->get_header_value("X-Request-Id").size() == 16);
  CHECK(c.Get("/v1/health", {{"X-Request-Id", "abc-123"}})->get_header_value("X-Request-Id") ==
        "abc-123");
  const std::string id = fresh->get_header_value("X-Request-Id");
  CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(c.Get("/v1/health")->get_header_value("X-Request-Id") != id);
  auto hostile = c.Get("/v1/health", {{"X-Request-Id", "a b\"<script>"}});
  CHECK(hostile->get_header_value("X-Request-Id").size() == 16);
  auto unknown = c.Get("/v1/nothing", auth());
  CHECK(unknown->status == 404);
  CHECK_FALSE(unknown->get_header_value("X-Request-Id").empty());
}

// The uids of one page, and its `next` (null on the last page).
std::pair<std::vector<std::string>, json> page_of(httplib::Client &c, const std::string &query) {
  auto r = c.Get(("/v1/experiments?" + query).c_str(), auth());
  REQUIRE(r);
  REQUIRE(r->status == 200);
  const json data = json::parse(r->body)["data"];
  REQUIRE(data.contains("next"));
  std::vector<std::string> uids;
  for (const auto &e : data["items"])
    uids.push_back(e["uid"]);
  return {uids, data["next"]};
}

TEST_CASE("experiments page by the `after` cursor in both orders; next is null on the last page") {
  BladedProcess d;
  auto c = d.client();
  constexpr int kExperiments = 7;
  for (int i = 0; i < kExperiments; ++i) {
    auto r = post_json(c, "/v1/experiments",
                       blade::test::marker_experiment(d.dir / ("m" + std::to_string(i))));
    REQUIRE(r);
    REQUIRE(r->status == 201);
  }
  for (const std::string order : {"asc", "desc"}) {
    CAPTURE(order);
    const auto [all, all_next] = page_of(c, "limit=1000&order=" + order);
    REQUIRE(all.size() == kExperiments);
    CHECK(all_next.is_null());

    // Pages of 3: 3, 3, 1, each starting right after the cursor it was given.
    std::vector<std::string> walked;
    std::vector<std::size_t> sizes;
    std::string query = "limit=3&order=" + order;
    for (int pages = 0; pages < 10; ++pages) {
      const auto [uids, next] = page_of(c, query);
      walked.insert(walked.end(), uids.begin(), uids.end());
      sizes.push_back(uids.size());
      if (next.is_null()) break;
      REQUIRE(next.is_string());
      query = "limit=3&order=" + order + "&after=" + next.get<std::string>();
    }
    CHECK(walked == all);  // every one once, in the list's order
    CHECK(sizes.back() < 3);
  }
}

TEST_CASE("a bad `after` cursor, or one beside offset, is 400 naming after") {
  BladedProcess d;
  auto c = d.client();
  for (const char *name : {"m1", "m2"}) {
    REQUIRE(post_json(c, "/v1/experiments", blade::test::marker_experiment(d.dir / name))
                ->status == 201);
  }
  const auto [uids, next] = page_of(c, "limit=1");
  REQUIRE(next.is_string());
  const std::string cursor = next;
  for (const std::string &query : std::vector<std::string>{
           "after=not-a-cursor", "after=", "after=" + cursor + "&offset=0",
           "after=" + cursor + "&offset=1"}) {
    CAPTURE(query);
    auto r = c.Get(("/v1/experiments?" + query).c_str(), auth());
    REQUIRE(r);
    CHECK(r->status == 400);
    const json body = json::parse(r->body);
    CHECK(body["code"] == "INVALID_ARGUMENT");
    CHECK(body["details"][0]["field"] == "after");
  }
  CHECK(c.Get(("/v1/experiments?after=" + cursor).c_str(), auth())->status == 200);
}

TEST_CASE("DELETE ?force must be a boolean") {
  BladedProcess d;
  auto c = d.client();
  auto r = c.Delete("/v1/experiments/0123456789abcdef?force=maybe", auth());
  CHECK(r->status == 400);
  CHECK(json::parse(r->body)["details"][0]["field"] == "force");
}

TEST_CASE("HTTPS with --tls-cert/--tls-key; an unusable key pair stops bladed at start") {
  blade::test::TempDir certs;
  const std::string cert = (certs / "cert.pem").string(), key = (certs / "key.pem").string();
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
      "-keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    MESSAGE("SKIPPED: the openssl command is not available to make a test certificate");
    return;
  }
  BladedOptions o;
  o.args = {"--tls-cert", cert, "--tls-key", key};
  o.scheme = "https";
  BladedProcess d(o);
  auto c = d.client();
  auto health = c.Get("/v1/health");
  REQUIRE(health);
  CHECK(health->status == 200);
  auto created = post_json(c, "/v1/experiments",
                           {{"target", "cmarker"},
                            {"action", "touch"},
                            {"flags", {{"path", (d.dir / "tls-marker").string()}}}});
  CHECK(created->status == 201);
  CHECK(fs::exists(d.dir / "tls-marker"));
  // Plain HTTP to the TLS port gets no answer.
  httplib::Client plain("127.0.0.1", d.port);
  plain.set_read_timeout(2);
  auto p = plain.Get("/v1/health");
  CHECK((!p || p->status != 200));

  blade::test::ChildProcess bad({blade::test::kBladed, "--port", "0", "--tls-cert", cert,
                                 "--tls-key", cert, "--state-dir", (certs / "s").string()},
                                {"BLADE_API_TOKEN=" + blade::test::kToken},
                                (certs / "log").string());
  CHECK(bad.exit_code(std::chrono::seconds(10)) == 1);
  CHECK(blade::test::read_text(certs / "log").find("tls-cert, tls-key") != std::string::npos);
}

namespace {

// Sends `raw` on a fresh connection; the response's status line.
std::string raw_exchange(int port, const std::string &raw) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  REQUIRE(::send(fd, raw.data(), raw.size(), 0) == static_cast<ssize_t>(raw.size()));
  std::string got;
  char buf[4096];
  ssize_t n;
  while (got.find("\r\n") == std::string::npos && (n = ::recv(fd, buf, sizeof buf, 0)) > 0)
    got.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return got.substr(0, got.find("\r\n"));
}

}  // namespace

TEST_CASE("a POST without Content-Length has no body and is answered at once (curl -X POST)") {
  BladedProcess d;
  const auto start = std::chrono::steady_clock::now();
  auto status = raw_exchange(
      d.port, "POST /v1/plugins/reload HTTP/1.1\r\nHost: x\r\nX-Api-Token: " + blade::test::kToken +
                  "\r\n\r\n");
  CHECK(status == "HTTP/1.1 200 OK");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));
}
