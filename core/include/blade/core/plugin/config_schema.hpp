// A plugin's configuration schema (descriptor field config_schema, ABI 1.3):
// a subset of JSON Schema, checked once when the plugin loads, then used to
// validate the plugin's section of bladed's config file and fill in its
// defaults. Keywords outside the subset make the schema invalid, so an
// author never believes a keyword is enforced when it is not.
//
// Supported: type (object, string, integer, number, boolean, array, or a
// list of these), properties, required, additionalProperties (true/false),
// enum, minimum, maximum, minLength, maxLength, items (one schema), default;
// annotations that change nothing: description, title, $comment, $schema,
// examples.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace blade {

// Levels of nested schemas (properties, items) and of nested values in a
// config section. Configuration is a handful of levels; the bound keeps the
// recursive checks far from the stack's end.
inline constexpr std::size_t kMaxConfigDepth = 16;

// The schema itself is unusable; the message says where and why
// ("properties.max: unsupported keyword 'pattern'").
class ConfigSchemaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A config section failed validation. what() joins every problem with "; ";
// each problem reads "<path>: <reason>".
class ConfigInvalid : public std::runtime_error {
 public:
  explicit ConfigInvalid(std::vector<std::string> problems);
  const std::vector<std::string> &problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

class ConfigSchema {
 public:
  // Parses a descriptor's config_schema text and checks it: valid JSON, only
  // supported keywords, well-formed values, a root of type "object", every
  // default valid against its own schema, nesting within kMaxConfigDepth.
  // Throws ConfigSchemaError.
  static ConfigSchema parse(std::string_view text);
  explicit ConfigSchema(nlohmann::json schema);

  const nlohmann::json &json() const { return schema_; }

  // Validates `section` and returns it with the defaults of missing
  // properties filled in. Every problem is reported, each path starting
  // with `root` (e.g. "plugins.os" gives "plugins.os.burn.max-cores: must be
  // at most 64"). Throws ConfigInvalid.
  nlohmann::json apply(const nlohmann::json &section, const std::string &root) const;

 private:
  nlohmann::json schema_;
};

}  // namespace blade
