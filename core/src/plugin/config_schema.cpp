#include "blade/core/plugin/config_schema.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>

#include "blade/core/model/bounded_json.hpp"

namespace blade {
namespace {

using json = nlohmann::json;

// The schema of a value nothing constrains (an item without `items`, a
// property of an open object): only its depth is checked.
const json kAnySchema = json::object();

const std::set<std::string> kTypes = {"object", "string", "integer", "number", "boolean", "array"};
const std::set<std::string> kKeywords = {
    "type",      "properties", "required",  "additionalProperties", "enum",
    "minimum",   "maximum",    "minLength", "maxLength",            "items",
    "default",   "description", "title",    "$comment",             "$schema",
    "examples"};

// "a.b" for a property, "a[2]" for an item; the root's own name alone.
std::string child_path(const std::string &path, const std::string &key) {
  return path.empty() ? key : path + "." + key;
}

std::string item_path(const std::string &path, std::size_t index) {
  return fmt::format("{}[{}]", path, index);
}

// Where a schema problem is: "(root)" rather than an empty prefix.
std::string where(const std::string &path) {
  return path.empty() ? "(root)" : path;
}

// The JSON Schema name of a value's type, for "expected X, got Y".
std::string type_name(const json &v) {
  switch (v.type()) {
    case json::value_t::object:
      return "object";
    case json::value_t::array:
      return "array";
    case json::value_t::string:
      return "string";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "integer";
    case json::value_t::number_float:
      return "number";
    default:
      return "null";
  }
}

bool is_type(const json &v, const std::string &type) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "boolean") return v.is_boolean();
  if (type == "number") return v.is_number();
  if (type == "integer") {
    if (v.is_number_integer()) return true;  // unsigned too
    // 3.0 is an integer in JSON Schema.
    if (v.is_number_float()) {
      double d = v.get<double>();
      return std::isfinite(d) && std::trunc(d) == d;
    }
  }
  return false;
}

std::vector<std::string> types_of(const json &schema) {
  std::vector<std::string> types;
  auto it = schema.find("type");
  if (it == schema.end()) return types;
  if (it->is_string()) {
    types.push_back(it->get<std::string>());
  } else {
    for (const auto &t : *it)
      types.push_back(t.get<std::string>());
  }
  return types;
}

// Characters, not bytes, as JSON Schema counts a string's length: UTF-8
// continuation bytes are not counted.
std::size_t code_points(const std::string &s) {
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// "1 character long", "3 characters long".
std::string characters(const json &n) {
  const auto count = n.get<std::size_t>();
  return fmt::format("{} character{} long", count, count == 1 ? "" : "s");
}

std::string number_text(const json &n) {
  return n.dump();
}

class Validator {
 public:
  std::vector<std::string> problems;

  // Checks `value` against `schema` at `path`, filling in defaults.
  void check(const json &schema, json &value, const std::string &path, std::size_t depth) {
    if (depth > kMaxConfigDepth) {
      problems.push_back(fmt::format("{}: nested deeper than {} levels", path, kMaxConfigDepth));
      return;
    }
    const auto types = types_of(schema);
    if (!types.empty() &&
        std::none_of(types.begin(), types.end(), [&](const auto &t) { return is_type(value, t); })) {
      problems.push_back(
          fmt::format("{}: expected {}, got {}", path, fmt::join(types, " or "), type_name(value)));
      return;  // the other keywords would only repeat the mismatch
    }
    if (auto it = schema.find("enum"); it != schema.end()) {
      if (std::find(it->begin(), it->end(), value) == it->end()) {
        std::vector<std::string> allowed;
        for (const auto &e : *it)
          allowed.push_back(e.dump());
        problems.push_back(
            fmt::format("{}: must be one of {}", path, fmt::join(allowed, ", ")));
      }
    }
    if (value.is_number()) check_number(schema, value, path);
    if (value.is_string()) check_string(schema, value.get_ref<const std::string &>(), path);
    if (value.is_object()) check_object(schema, value, path, depth);
    if (value.is_array()) check_array(schema, value, path, depth);
  }

 private:
  void check_number(const json &schema, const json &value, const std::string &path) {
    const double v = value.get<double>();
    if (auto it = schema.find("minimum"); it != schema.end() && v < it->get<double>())
      problems.push_back(fmt::format("{}: must be at least {}", path, number_text(*it)));
    if (auto it = schema.find("maximum"); it != schema.end() && v > it->get<double>())
      problems.push_back(fmt::format("{}: must be at most {}", path, number_text(*it)));
  }

  void check_string(const json &schema, const std::string &value, const std::string &path) {
    const std::size_t n = code_points(value);
    if (auto it = schema.find("minLength"); it != schema.end() && n < it->get<std::size_t>())
      problems.push_back(fmt::format("{}: must be at least {}", path, characters(*it)));
    if (auto it = schema.find("maxLength"); it != schema.end() && n > it->get<std::size_t>())
      problems.push_back(fmt::format("{}: must be at most {}", path, characters(*it)));
  }

  void check_object(const json &schema, json &value, const std::string &path, std::size_t depth) {
    auto props_it = schema.find("properties");
    const json &props = props_it != schema.end() ? *props_it : kAnySchema;
    if (auto it = schema.find("required"); it != schema.end()) {
      for (const auto &name : *it) {
        const auto &key = name.get_ref<const std::string &>();
        if (!value.contains(key)) problems.push_back(fmt::format("{}: is required", child_path(path, key)));
      }
    }
    const bool closed = schema.value("additionalProperties", true) == false;
    for (auto &[key, child] : value.items()) {
      auto sub = props.find(key);
      if (sub != props.end()) {
        check(*sub, child, child_path(path, key), depth + 1);
      } else if (closed) {
        std::vector<std::string> known;
        for (const auto &[name, _] : props.items())
          known.push_back(name);
        problems.push_back(
            known.empty()
                ? fmt::format("{}: unknown property (no properties are allowed)",
                              child_path(path, key))
                : fmt::format("{}: unknown property; allowed: {}", child_path(path, key),
                              fmt::join(known, ", ")));
      } else {
        check(kAnySchema, child, child_path(path, key), depth + 1);
      }
    }
    for (const auto &[key, sub] : props.items()) {
      if (value.contains(key)) continue;
      if (auto d = sub.find("default"); d != sub.end()) value[key] = *d;
    }
  }

  void check_array(const json &schema, json &value, const std::string &path, std::size_t depth) {
    auto it = schema.find("items");
    const json &items = it != schema.end() ? *it : kAnySchema;
    for (std::size_t i = 0; i < value.size(); ++i)
      check(items, value[i], item_path(path, i), depth + 1);
  }
};

// Checks one schema object (and those under it); `path` names it in errors.
void check_schema(const json &schema, const std::string &path, std::size_t depth) {
  if (depth > kMaxConfigDepth)
    throw ConfigSchemaError(
        fmt::format("{}: schemas nested deeper than {} levels", where(path), kMaxConfigDepth));
  if (!schema.is_object())
    throw ConfigSchemaError(fmt::format("{}: a schema must be a JSON object", where(path)));
  auto fail = [&](const std::string &keyword, const std::string &why) {
    throw ConfigSchemaError(fmt::format("{}: {} {}", where(path), keyword, why));
  };
  for (const auto &[key, value] : schema.items()) {
    if (!kKeywords.count(key))
      throw ConfigSchemaError(fmt::format(
          "{}: unsupported keyword '{}' (supported: type, properties, required, "
          "additionalProperties, enum, minimum, maximum, minLength, maxLength, items, default, "
          "description)",
          where(path), key));
    if (key == "type") {
      std::vector<json> listed = value.is_array() ? value.get<std::vector<json>>()
                                                  : std::vector<json>{value};
      if (listed.empty()) fail(key, "must not be an empty list");
      for (const auto &t : listed)
        if (!t.is_string() || !kTypes.count(t.get<std::string>()))
          fail(key, fmt::format("{} is not one of object, string, integer, number, boolean, array",
                                t.dump()));
    } else if (key == "properties") {
      if (!value.is_object()) fail(key, "must be an object of schemas");
      for (const auto &[name, sub] : value.items())
        check_schema(sub, child_path(path, "properties." + name), depth + 1);
    } else if (key == "required") {
      if (!value.is_array()) fail(key, "must be a list of property names");
      for (const auto &name : value)
        if (!name.is_string()) fail(key, "must be a list of property names");
    } else if (key == "additionalProperties") {
      if (!value.is_boolean()) fail(key, "must be true or false (a schema here is not supported)");
    } else if (key == "enum") {
      if (!value.is_array() || value.empty()) fail(key, "must be a non-empty list");
    } else if (key == "minimum" || key == "maximum") {
      if (!value.is_number()) fail(key, "must be a number");
    } else if (key == "minLength" || key == "maxLength") {
      if (!value.is_number_unsigned() && !(value.is_number_integer() && value.get<long long>() >= 0))
        fail(key, "must be a non-negative integer");
    } else if (key == "items") {
      if (!value.is_object()) fail(key, "must be one schema (a list of schemas is not supported)");
      check_schema(value, child_path(path, "items"), depth + 1);
    } else if (key == "description" || key == "title" || key == "$comment" || key == "$schema") {
      if (!value.is_string()) fail(key, "must be a string");
    }
  }
  // A default that its own schema refuses would be handed to the plugin
  // unchecked: refuse the schema instead.
  if (auto d = schema.find("default"); d != schema.end()) {
    json copy = *d;
    Validator v;
    v.check(schema, copy, child_path(path, "default"), depth);
    if (!v.problems.empty())
      throw ConfigSchemaError(fmt::format("{}: invalid default: {}", where(path),
                                          fmt::join(v.problems, "; ")));
  }
}

}  // namespace

ConfigInvalid::ConfigInvalid(std::vector<std::string> problems)
    : std::runtime_error(fmt::format("{}", fmt::join(problems, "; "))),
      problems_(std::move(problems)) {}

ConfigSchema ConfigSchema::parse(std::string_view text) {
  BoundedJson parsed = parse_bounded_json(text);
  if (parsed.problem == JsonProblem::TooDeep)
    throw ConfigSchemaError(fmt::format("not valid: nested deeper than {} levels", kMaxJsonDepth));
  if (parsed.problem != JsonProblem::None) throw ConfigSchemaError("not valid JSON");
  return ConfigSchema(std::move(parsed.value));
}

ConfigSchema::ConfigSchema(nlohmann::json schema) : schema_(std::move(schema)) {
  check_schema(schema_, "", 0);
  if (schema_.value("type", nlohmann::json()) != "object")
    throw ConfigSchemaError("(root): type must be \"object\" (a config section is a mapping)");
}

nlohmann::json ConfigSchema::apply(const nlohmann::json &section, const std::string &root) const {
  nlohmann::json value = section;
  Validator v;
  v.check(schema_, value, root, 0);
  if (!v.problems.empty()) throw ConfigInvalid(std::move(v.problems));
  return value;
}

}  // namespace blade
