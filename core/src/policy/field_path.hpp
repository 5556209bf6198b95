// Reading a JSON request body field by field, each error naming the field
// by its path as the API names it ("spec.rules[2].match.path.regex"): an
// Error(InvalidArgument) whose message is "<path>: <why>" and whose one
// detail is {<path>, <why>}.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace blade::policy_fields {

class FieldPath {
 public:
  FieldPath() = default;
  explicit FieldPath(std::string path) : path_(std::move(path)) {}

  FieldPath key(std::string_view name) const;  // "a" -> "a.name"
  FieldPath index(std::size_t i) const;        // "a" -> "a[i]"
  const std::string &str() const { return path_; }

  [[noreturn]] void fail(const std::string &why) const;

 private:
  std::string path_;
};

// The JSON type's name as the API's messages say it ("an object", ...).
std::string_view type_name(const nlohmann::json &v);

// `v` must be an object whose keys are all in `known`; an unknown key is
// named by its own path (so a misspelt "precentage" is pointed at).
const nlohmann::json &object_with(const nlohmann::json &v, const FieldPath &at,
                                  std::initializer_list<std::string_view> known);

// An integer in [min, max] (a JSON number without fraction or exponent).
std::int64_t integer_in(const nlohmann::json &v, const FieldPath &at, std::int64_t min,
                        std::int64_t max);

// A string of at most `max_bytes` bytes, not empty unless `may_be_empty`.
const std::string &string_of(const nlohmann::json &v, const FieldPath &at, std::size_t max_bytes,
                             bool may_be_empty = false);

}  // namespace blade::policy_fields
