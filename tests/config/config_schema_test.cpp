// The config_schema subset (core/src/plugin/config_schema.cpp): what a schema may
// say, how a section is checked against it, and the paths errors name.
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "blade/core/plugin/config_schema.hpp"

using blade::ConfigInvalid;
using blade::ConfigSchema;
using blade::ConfigSchemaError;
using nlohmann::json;

namespace {

ConfigSchema schema(const json &properties, const json &extra = json::object()) {
  json s = {{"type", "object"}, {"properties", properties}};
  s.update(extra);
  return ConfigSchema(s);
}

// The problems of applying `section`, joined; "" when it is valid.
std::string problems(const ConfigSchema &s, const json &section) {
  try {
    s.apply(section, "plugins.os");
    return "";
  } catch (const ConfigInvalid &e) {
    return e.what();
  }
}

// Why the schema is refused; "" when it is accepted.
std::string refusal(const std::string &text) {
  try {
    ConfigSchema::parse(text);
    return "";
  } catch (const ConfigSchemaError &e) {
    return e.what();
  }
}

// A schema nesting `levels` objects under "a".
json nested_schema(int levels) {
  json s = {{"type", "object"}};
  for (int i = 0; i < levels; ++i)
    s = {{"type", "object"}, {"properties", {{"a", s}}}};
  return s;
}

}  // namespace

TEST_CASE("type: each of the six, a list of types, and 3.0 as an integer") {
  auto s = schema({{"o", {{"type", "object"}}},
                   {"s", {{"type", "string"}}},
                   {"i", {{"type", "integer"}}},
                   {"n", {{"type", "number"}}},
                   {"b", {{"type", "boolean"}}},
                   {"a", {{"type", "array"}}},
                   {"either", {{"type", json::array({"string", "integer"})}}}});
  CHECK(problems(s, {{"o", json::object()}, {"s", "x"}, {"i", 3}, {"n", 2.5}, {"b", true},
                     {"a", json::array()}, {"either", 7}}) == "");
  CHECK(problems(s, {{"i", 3.0}, {"n", 4}, {"either", "x"}}) == "");
  CHECK(problems(s, {{"o", 1}}) == "plugins.os.o: expected object, got integer");
  CHECK(problems(s, {{"s", 1}}) == "plugins.os.s: expected string, got integer");
  CHECK(problems(s, {{"i", 2.5}}) == "plugins.os.i: expected integer, got number");
  CHECK(problems(s, {{"n", "1"}}) == "plugins.os.n: expected number, got string");
  CHECK(problems(s, {{"b", "true"}}) == "plugins.os.b: expected boolean, got string");
  CHECK(problems(s, {{"a", json::object()}}) == "plugins.os.a: expected array, got object");
  CHECK(problems(s, {{"either", true}}) ==
        "plugins.os.either: expected string or integer, got boolean");
  CHECK(problems(s, {{"s", nullptr}}) == "plugins.os.s: expected string, got null");
}

TEST_CASE("minimum and maximum name the bound, and every problem is reported") {
  auto s = schema({{"burn", {{"type", "object"},
                             {"properties",
                              {{"max-cores", {{"type", "integer"}, {"minimum", 1}, {"maximum", 64}}},
                               {"ratio", {{"type", "number"}, {"minimum", 0.5}}}}}}}});
  CHECK(problems(s, {{"burn", {{"max-cores", 64}, {"ratio", 0.5}}}}) == "");
  CHECK(problems(s, {{"burn", {{"max-cores", 65}}}}) ==
        "plugins.os.burn.max-cores: must be at most 64");
  CHECK(problems(s, {{"burn", {{"max-cores", 0}, {"ratio", 0.25}}}}) ==
        "plugins.os.burn.max-cores: must be at least 1; plugins.os.burn.ratio: must be at least "
        "0.5");
  try {
    s.apply({{"burn", {{"max-cores", 0}, {"ratio", 0.25}}}}, "plugins.os");
    FAIL("accepted");
  } catch (const ConfigInvalid &e) {
    CHECK(e.problems().size() == 2);
  }
}

TEST_CASE("minLength and maxLength count characters, not bytes") {
  auto s = schema({{"name", {{"type", "string"}, {"minLength", 2}, {"maxLength", 3}}}});
  CHECK(problems(s, {{"name", "ab"}}) == "");
  CHECK(problems(s, {{"name", "\xc3\xa9\xc3\xa9\xc3\xa9"}}) == "");  // three e-acute, 6 bytes
  CHECK(problems(s, {{"name", "a"}}) == "plugins.os.name: must be at least 2 characters long");
  CHECK(problems(s, {{"name", "abcd"}}) == "plugins.os.name: must be at most 3 characters long");
  auto one = schema({{"c", {{"type", "string"}, {"minLength", 1}}}});
  CHECK(problems(one, {{"c", ""}}) == "plugins.os.c: must be at least 1 character long");
}

TEST_CASE("enum lists what is allowed") {
  auto s = schema({{"mode", {{"enum", json::array({"fast", "slow", 3})}}}});
  CHECK(problems(s, {{"mode", "slow"}}) == "");
  CHECK(problems(s, {{"mode", 3}}) == "");
  CHECK(problems(s, {{"mode", "other"}}) == "plugins.os.mode: must be one of \"fast\", \"slow\", 3");
}

TEST_CASE("required, additionalProperties and nested paths") {
  auto s = schema({{"dir", {{"type", "string"}}}, {"n", {{"type", "integer"}}}},
                  {{"required", json::array({"dir"})}, {"additionalProperties", false}});
  CHECK(problems(s, {{"dir", "/x"}}) == "");
  CHECK(problems(s, json::object()) == "plugins.os.dir: is required");
  CHECK(problems(s, {{"dir", "/x"}, {"dri", 1}}) ==
        "plugins.os.dri: unknown property; allowed: dir, n");
  // additionalProperties true (the default) lets unknown keys through as given.
  auto open = schema({{"dir", {{"type", "string"}}}});
  CHECK(open.apply({{"extra", {{"k", 1}}}}, "plugins.os") == json({{"extra", {{"k", 1}}}}));
  auto none = ConfigSchema(json{{"type", "object"}, {"additionalProperties", false}});
  CHECK(problems(none, {{"x", 1}}) == "plugins.os.x: unknown property (no properties are allowed)");
}

TEST_CASE("items checks each element, with its index in the path") {
  auto s = schema({{"hosts", {{"type", "array"},
                              {"items", {{"type", "object"},
                                         {"properties", {{"port", {{"type", "integer"},
                                                                   {"maximum", 65535}}}}}}}}}});
  CHECK(problems(s, {{"hosts", {{{"port", 1}}, {{"port", 2}}}}}) == "");
  CHECK(problems(s, {{"hosts", {{{"port", 1}}, {{"port", 70000}}}}}) ==
        "plugins.os.hosts[1].port: must be at most 65535");
  CHECK(problems(s, {{"hosts", {{{"port", 1}}, "x"}}}) ==
        "plugins.os.hosts[1]: expected object, got string");
}

TEST_CASE("defaults fill missing properties, at every level given, and never replace a value") {
  auto s = schema({{"max", {{"type", "integer"}, {"default", 3}}},
                   {"burn", {{"type", "object"},
                             {"properties", {{"cores", {{"type", "integer"}, {"default", 2}}}}}}}});
  CHECK(s.apply(json::object(), "plugins.os") == json({{"max", 3}}));
  CHECK(s.apply({{"max", 5}}, "plugins.os") == json({{"max", 5}}));
  CHECK(s.apply({{"burn", json::object()}}, "plugins.os") ==
        json({{"max", 3}, {"burn", {{"cores", 2}}}}));
}

TEST_CASE("a schema outside the subset is refused, saying where and why") {
  CHECK(refusal("{not json") == "not valid JSON");
  CHECK(refusal(R"({"type":"object","properties":{"x":{"type":"string","pattern":"^a"}}})") ==
        "properties.x: unsupported keyword 'pattern' (supported: type, properties, required, "
        "additionalProperties, enum, minimum, maximum, minLength, maxLength, items, default, "
        "description)");
  CHECK(refusal(R"({"type":"string"})") ==
        "(root): type must be \"object\" (a config section is a mapping)");
  CHECK(refusal(R"({"properties":{}})") ==
        "(root): type must be \"object\" (a config section is a mapping)");
  CHECK(refusal(R"({"type":"object","properties":{"x":{"type":"int"}}})") ==
        "properties.x: type \"int\" is not one of object, string, integer, number, boolean, array");
  CHECK(refusal(R"({"type":"object","additionalProperties":{"type":"string"}})") ==
        "(root): additionalProperties must be true or false (a schema here is not supported)");
  CHECK(refusal(R"({"type":"object","properties":{"x":{"minimum":"1"}}})") ==
        "properties.x: minimum must be a number");
  CHECK(refusal(R"({"type":"object","properties":{"x":{"maxLength":-1}}})") ==
        "properties.x: maxLength must be a non-negative integer");
  CHECK(refusal(R"({"type":"object","properties":{"x":{"enum":[]}}})") ==
        "properties.x: enum must be a non-empty list");
  CHECK(refusal(R"({"type":"object","required":"x"})") ==
        "(root): required must be a list of property names");
  CHECK(refusal(R"({"type":"object","properties":{"l":{"type":"array","items":[{}]}}})") ==
        "properties.l: items must be one schema (a list of schemas is not supported)");
  CHECK(refusal(R"({"type":"object","properties":{"x":{"type":"integer","maximum":5,"default":9}}})") ==
        "properties.x: invalid default: properties.x.default: must be at most 5");
  CHECK(refusal(R"({"type":"object","description":"ok","title":"t","$comment":"c"})") == "");
}

TEST_CASE("schema nesting and value nesting are bounded") {
  const int limit = static_cast<int>(blade::kMaxConfigDepth);
  CHECK_NOTHROW(ConfigSchema(nested_schema(limit)));
  CHECK_THROWS_WITH_AS(ConfigSchema(nested_schema(limit + 1)),
                       doctest::Contains("schemas nested deeper than 16 levels"),
                       ConfigSchemaError);
  // A value nobody constrains is still walked for its depth.
  json deep = 1;
  for (int i = 0; i < limit + 2; ++i)
    deep = json::array({deep});
  auto open = ConfigSchema(json{{"type", "object"}});
  CHECK(problems(open, {{"x", deep}}).find("nested deeper than 16 levels") != std::string::npos);
  // Text nested past the JSON cap is refused before it is parsed.
  CHECK(refusal(std::string(100000, '[') + std::string(100000, ']')) ==
        "not valid: nested deeper than 64 levels");
}
