// The OpenAPI document (server/openapi.yaml, served at GET /v1/openapi.yaml)
// against the daemon itself: it must parse, name exactly the routes bladed
// registers with the access each needs, and every operation it names must
// reach a handler over HTTP and answer only statuses it documents, in the
// body shape it documents (the envelope, or ChaosBlade's Response).
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "bladed_process.hpp"
#include "http/http_server.hpp"
#include "registered_routes.hpp"
#include "routes/openapi_document.hpp"

using namespace blade::test;

namespace {

// How a documented response's JSON body is shaped.
enum class Shape { Envelope, ChaosBlade, Other };

struct Operation {
  std::string method;  // upper case, as RouteInfo has it
  std::string path;
  std::string access;                      // x-blade-access
  std::map<std::string, Shape> responses;  // "200", "404", ... -> body shape
  std::set<std::string> query;             // parameters "in: query"
};

std::string upper(std::string s) {
  for (char &c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string lower(std::string s) {
  for (char &c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_method(const std::string &key) {
  static const std::set<std::string> methods = {"get",  "put",     "post",  "delete",
                                                "head", "options", "patch", "trace"};
  return methods.count(key) > 0;
}

// Where "#/a/b" leads in the document, if anywhere.
std::optional<YAML::Node> resolve(const YAML::Node &doc, const std::string &ref) {
  if (ref.rfind("#/", 0) != 0) return std::nullopt;
  // reset() rebinds; assignment would overwrite the node in the document.
  YAML::Node here;
  here.reset(doc);
  for (std::size_t start = 2; start <= ref.size();) {
    const auto end = std::min(ref.find('/', start), ref.size());
    const YAML::Node next = std::as_const(here)[ref.substr(start, end - start)];
    if (!next.IsDefined()) return std::nullopt;
    here.reset(next);
    start = end + 1;
  }
  return here;
}

// node[key] without creating anything: undefined when node is not a map or
// has no such key.
YAML::Node at(const YAML::Node &node, const std::string &key) {
  if (!node.IsDefined() || !node.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  return std::as_const(node)[key];
}

// A node, or what its $ref leads to.
YAML::Node follow(const YAML::Node &doc, const YAML::Node &node) {
  const YAML::Node ref = at(node, "$ref");
  if (!ref.IsDefined() || !ref.IsScalar()) return node;
  auto target = resolve(doc, ref.as<std::string>());
  return target ? *target : YAML::Node(YAML::NodeType::Undefined);
}

// The shape of a response's application/json body: the schema, through
// $refs and the first member of allOf, down to Envelope or ChaosBladeResponse.
Shape response_shape(const YAML::Node &doc, const YAML::Node &response) {
  YAML::Node schema = at(at(at(follow(doc, response), "content"), "application/json"), "schema");
  for (int depth = 0; depth < 16 && schema.IsDefined(); ++depth) {
    const YAML::Node ref = at(schema, "$ref");
    const YAML::Node all = at(schema, "allOf");
    if (ref.IsDefined() && ref.IsScalar()) {
      const auto name = ref.as<std::string>();
      if (name == "#/components/schemas/Envelope") return Shape::Envelope;
      if (name == "#/components/schemas/ChaosBladeResponse") return Shape::ChaosBlade;
      schema.reset(follow(doc, schema));
    } else if (all.IsDefined() && all.IsSequence() && all.size() > 0) {
      schema.reset(std::as_const(all)[0]);
    } else {
      break;
    }
  }
  return Shape::Other;
}

// "METHOD /path" -> the operation, for every operation of the document.
std::map<std::string, Operation> documented_operations(const YAML::Node &doc) {
  std::map<std::string, Operation> ops;
  for (const auto &path : doc["paths"]) {
    for (const auto &op : path.second) {
      const auto key = op.first.as<std::string>();
      if (!is_method(key)) continue;
      const YAML::Node access = op.second["x-blade-access"];
      Operation o{upper(key),
                  path.first.as<std::string>(),
                  access.IsScalar() ? access.as<std::string>() : "<missing>",
                  {},
                  {}};
      for (const auto &response : op.second["responses"])
        o.responses[response.first.as<std::string>()] = response_shape(doc, response.second);
      // Parameters of the path item apply to each of its operations.
      for (const YAML::Node &list : {at(path.second, "parameters"), at(op.second, "parameters")}) {
        if (!list.IsDefined() || !list.IsSequence()) continue;
        for (const auto &p : list) {
          const YAML::Node param = follow(doc, p);
          const YAML::Node in = at(param, "in");
          const YAML::Node name = at(param, "name");
          if (in.IsScalar() && in.as<std::string>() == "query" && name.IsScalar())
            o.query.insert(name.as<std::string>());
        }
      }
      ops[o.method + " " + o.path] = o;
    }
  }
  return ops;
}

std::string access_name(blade::server::Access access) {
  switch (access) {
    case blade::server::Access::Public:
      return "public";
    case blade::server::Access::Read:
      return "read";
    case blade::server::Access::Admin:
      return "admin";
  }
  return "?";
}

// Every "#/a/b" reference that does not lead anywhere in the document.
void dangling_refs(const YAML::Node &doc, const YAML::Node &node, std::vector<std::string> &out) {
  if (node.IsSequence()) {
    for (const auto &child : node)
      dangling_refs(doc, child, out);
    return;
  }
  if (!node.IsMap()) return;
  for (const auto &entry : node) {
    if (entry.first.as<std::string>() == "$ref" && entry.second.IsScalar()) {
      const auto ref = entry.second.as<std::string>();
      if (!resolve(doc, ref)) out.push_back(ref);
    } else {
      dangling_refs(doc, entry.second, out);
    }
  }
}

// The document's path with every {param} replaced by a value a route accepts
// as a segment.
std::string concrete(const std::string &path) {
  std::string out;
  for (std::size_t i = 0; i < path.size();) {
    if (path[i] != '{') {
      out += path[i++];
      continue;
    }
    const auto close = path.find('}', i);
    const auto name = path.substr(i + 1, close - i - 1);
    out += name == "name" ? "c-marker" : "0123456789abcdef";
    i = close + 1;
  }
  return out;
}

std::string envelope_message(const httplib::Response &res) {
  auto body = nlohmann::json::parse(res.body, nullptr, false);
  if (!body.is_object() || !body.contains("message") || !body["message"].is_string()) return {};
  return body["message"].get<std::string>();
}

// Empty when `body` has the shape; else what is wrong with it.
std::string shape_problem(Shape shape, const std::string &text) {
  if (shape == Shape::Other) return {};
  auto body = nlohmann::json::parse(text, nullptr, false);
  if (!body.is_object()) return "not a JSON object";
  if (shape == Shape::Envelope) {
    if (!body.contains("code") || !body["code"].is_string()) return "no string code (envelope)";
    if (!body.contains("message") || !body.contains("data")) return "no message or data";
    return {};
  }
  if (!body.contains("code") || !body["code"].is_number_integer())
    return "no integer code (ChaosBlade's Response)";
  if (!body.contains("success") || !body["success"].is_boolean()) return "no boolean success";
  if (body.contains("message") || body.contains("data")) return "envelope fields in a Response";
  return {};
}

// The status answered is one the operation documents, in its documented shape.
void check_documented(const std::string &key, const Operation &op, const httplib::Response &res) {
  const auto it = op.responses.find(std::to_string(res.status));
  if (it == op.responses.end()) {
    CHECK_MESSAGE(
        op.responses.count("default"),
        key << " answered " << res.status << ", which it does not document: " << res.body);
    return;
  }
  const auto problem = shape_problem(it->second, res.body);
  CHECK_MESSAGE(problem.empty(), key << " answered " << res.status
                                     << " not in its documented shape (" << problem
                                     << "): " << res.body);
}

}  // namespace

TEST_CASE("GET /v1/openapi.yaml serves the embedded OpenAPI 3 document to any token") {
  BladedProcess bladed(with_test_plugins({"c_marker.so"}));
  auto client = bladed.client();

  auto anonymous = client.Get("/v1/openapi.yaml");
  REQUIRE(anonymous);
  CHECK(anonymous->status == 401);

  auto res = client.Get("/v1/openapi.yaml", auth());
  REQUIRE(res);
  REQUIRE(res->status == 200);
  CHECK(res->get_header_value("Content-Type").rfind("application/yaml", 0) == 0);
  CHECK(res->has_header("X-Request-Id"));
  CHECK(res->body == blade::server::openapi_document());

  YAML::Node doc;
  REQUIRE_NOTHROW(doc = YAML::Load(res->body));
  REQUIRE(doc["openapi"].IsScalar());
  CHECK(doc["openapi"].as<std::string>().rfind("3.", 0) == 0);
  CHECK(doc["info"]["title"].IsScalar());
  CHECK(doc["components"]["securitySchemes"]["ApiKey"]["name"].as<std::string>() == "X-Api-Token");
  CHECK(doc["components"]["securitySchemes"]["Bearer"]["scheme"].as<std::string>() == "bearer");

  std::vector<std::string> dangling;
  dangling_refs(doc, doc, dangling);
  for (const auto &ref : dangling)
    FAIL_CHECK("$ref leads nowhere: " << ref);

  for (const auto &[key, op] : documented_operations(doc)) {
    CHECK_MESSAGE(!op.responses.empty(), key << " documents no response");
    // Only public operations lift the document-wide token requirement.
    const YAML::Node security = doc["paths"][op.path][lower(op.method)]["security"];
    const bool open = security.IsSequence() && security.size() == 0;
    CHECK_MESSAGE(open == (op.access == "public"),
                  key << ": security and x-blade-access " << op.access << " disagree");
  }
}

TEST_CASE("the document names exactly the routes bladed registers, with their access") {
  std::map<std::string, std::string> registered;  // "METHOD /path" -> access
  std::map<std::string, std::set<std::string>> accepted;  // "METHOD /path" -> query names
  for (const auto &r : registered_routes()) {
    registered[r.method + " " + r.path] = access_name(r.access);
    accepted[r.method + " " + r.path] = {r.query.begin(), r.query.end()};
  }
  REQUIRE(registered.count("GET /v1/health"));

  const auto documented =
      documented_operations(YAML::Load(std::string(blade::server::openapi_document())));
  for (const auto &[key, access] : registered) {
    auto it = documented.find(key);
    CHECK_MESSAGE(it != documented.end(), "route missing from the document: " << key);
    if (it != documented.end()) {
      CHECK_MESSAGE(it->second.access == access, key << ": x-blade-access is " << it->second.access
                                                     << ", the route needs " << access);
      // The route refuses every query parameter it does not declare, so the
      // document must list exactly those.
      for (const auto &name : accepted[key])
        CHECK_MESSAGE(it->second.query.count(name),
                      key << " takes ?" << name << ", which the document does not list");
      for (const auto &name : it->second.query)
        CHECK_MESSAGE(accepted[key].count(name),
                      key << ": the document lists ?" << name << ", which the route refuses");
    }
  }
  for (const auto &[key, op] : documented)
    CHECK_MESSAGE(registered.count(key), "documented route that bladed does not have: " << key);
}

namespace {

// Calls every documented operation once with `headers` (no body but "{}" on
// POST and PUT): each must reach a handler and answer what it documents.
// With a valid token the event streams must open.
void walk(httplib::Client &client, const httplib::Headers &headers, bool valid_token) {
  const auto documented =
      documented_operations(YAML::Load(std::string(blade::server::openapi_document())));
  REQUIRE(documented.size() > 10);

  for (const auto &[key, op] : documented) {
    CAPTURE(key);
    const std::string path = concrete(op.path);
    if (op.path == "/v1/events" || op.path == "/v1/config/stream") {
      // A stream never ends by itself: read its status line and headers only
      // (an error's body is read).
      httplib::Response head;
      std::string body;
      client.Get(
          path.c_str(), headers,
          [&](const httplib::Response &res) {
            head = res;
            return res.status != 200;
          },
          [&](const char *data, std::size_t size) {
            body.append(data, size);
            return true;
          });
      head.body = body;
      CHECK(head.has_header("X-Request-Id"));
      if (valid_token) {
        CHECK(head.status == 200);
        CHECK(head.get_header_value("Content-Type").rfind("text/event-stream", 0) == 0);
      }
      check_documented(key, op, head);
      continue;
    }
    auto call = [&]() -> httplib::Result {
      if (op.method == "GET") return client.Get(path.c_str(), headers);
      if (op.method == "POST") return client.Post(path.c_str(), headers, "{}", "application/json");
      if (op.method == "PUT") return client.Put(path.c_str(), headers, "{}", "application/json");
      if (op.method == "DELETE") return client.Delete(path.c_str(), headers);
      FAIL("no way to call method " << op.method);
      return {nullptr, httplib::Error::Unknown};
    };
    auto res = call();
    REQUIRE_MESSAGE(res, key << ": no response (" << httplib::to_string(res.error()) << ")");
    const std::string message = envelope_message(*res);
    CHECK_MESSAGE(!(res->status == 404 && message.rfind("no route", 0) == 0),
                  key << " has no route in bladed: " << message);
    CHECK_MESSAGE(res->status != 500, key << " answered 500: " << res->body);
    CHECK_MESSAGE(res->has_header("X-Request-Id"), key << " answered without X-Request-Id");
    check_documented(key, op, *res);
  }
}

}  // namespace

TEST_CASE("every documented operation reaches a handler and answers as documented") {
  const std::string viewer = "viewer-secret-0123456789abcdef";
  TempDir dir("openapi-walk");
  const auto config = dir / "tokens.yaml";
  std::ofstream(config) << "tokens:\n  - {name: dashboard, token: " << viewer
                        << ", role: viewer}\n";
  BladedProcess bladed(
      with_test_plugins({"c_marker.so"}, {"--rate-limit", "0", "--config", config.string()}));
  auto client = bladed.client();

  SUBCASE("as an admin") {
    walk(client, auth(), true);
  }
  // 403 on admin operations.
  SUBCASE("as a viewer") {
    walk(client, {{"X-Api-Token", viewer}}, true);
  }
  // 401, or 429 once failed authentications from this address pass 5/s.
  SUBCASE("without a token") {
    walk(client, {}, false);
  }
}
