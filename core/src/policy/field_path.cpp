#include "field_path.hpp"

#include <fmt/format.h>

#include "blade/core/model/error.hpp"

namespace blade::policy_fields {

FieldPath FieldPath::key(std::string_view name) const {
  return FieldPath(path_.empty() ? std::string(name) : fmt::format("{}.{}", path_, name));
}

FieldPath FieldPath::index(std::size_t i) const {
  return FieldPath(fmt::format("{}[{}]", path_, i));
}

void FieldPath::fail(const std::string &why) const {
  const std::string field = path_.empty() ? std::string("body") : path_;
  throw Error(ErrorCode::InvalidArgument, fmt::format("{}: {}", field, why), {{field, why}});
}

std::string_view type_name(const nlohmann::json &v) {
  switch (v.type()) {
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::null:
      return "null";
    default:
      return "a number";
  }
}

const nlohmann::json &object_with(const nlohmann::json &v, const FieldPath &at,
                                  std::initializer_list<std::string_view> known) {
  if (!v.is_object()) at.fail(fmt::format("must be an object, not {}", type_name(v)));
  for (const auto &[name, value] : v.items()) {
    bool found = false;
    for (std::string_view k : known)
      found = found || k == name;
    if (!found)
      at.key(name).fail(fmt::format("unknown field (known here: {})", fmt::join(known, ", ")));
  }
  return v;
}

std::int64_t integer_in(const nlohmann::json &v, const FieldPath &at, std::int64_t min,
                        std::int64_t max) {
  const std::string range = fmt::format("must be an integer from {} to {}", min, max);
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (max < 0 || u > static_cast<std::uint64_t>(max)) at.fail(range);
    return static_cast<std::int64_t>(u);
  }
  if (!v.is_number_integer())
    at.fail(fmt::format("{}, not {}", range, v.is_number() ? v.dump() : std::string(type_name(v))));
  const auto i = v.get<std::int64_t>();
  if (i < min || i > max) at.fail(fmt::format("{}, not {}", range, i));
  return i;
}

const std::string &string_of(const nlohmann::json &v, const FieldPath &at, std::size_t max_bytes,
                             bool may_be_empty) {
  if (!v.is_string()) at.fail(fmt::format("must be a string, not {}", type_name(v)));
  const auto &s = v.get_ref<const std::string &>();
  if (s.empty() && !may_be_empty) at.fail("must not be empty");
  if (s.size() > max_bytes) at.fail(fmt::format("must be at most {} bytes, not {}", max_bytes, s.size()));
  return s;
}

}  // namespace blade::policy_fields
