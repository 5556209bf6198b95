#include "yaml_json.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

namespace blade::server {
namespace {

template <class T>
bool parse_whole(const std::string &s, T &out) {
  const char *begin = s.data();
  if (!s.empty() && s[0] == '+') ++begin;  // from_chars takes no '+'
  auto [end, ec] = std::from_chars(begin, s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && begin != end;
}

// A plain scalar typed by YAML 1.2's core schema, without yaml-cpp's
// YAML 1.1 extras (yes/no/on/off stay strings, as a plugin author reading
// the JSON would expect).
nlohmann::json plain_scalar(const std::string &s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  std::int64_t i = 0;
  if (parse_whole(s, i)) return i;
  // Floats need a digit and one of . e E, so "1_000" or "0x1f" stay strings.
  if (s.find_first_of("0123456789") != std::string::npos &&
      s.find_first_of(".eE") != std::string::npos) {
    double d = 0;
    if (parse_whole(s, d) && std::isfinite(d)) return d;
  }
  return s;
}

nlohmann::json convert(const YAML::Node &node, const std::string &path, std::size_t depth,
                       std::size_t max_depth) {
  if (depth > max_depth)
    throw std::invalid_argument(fmt::format("{}: nested deeper than {} levels", path, max_depth));
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Scalar:
      // yaml-cpp tags a quoted scalar "!" and a plain one "?".
      return node.Tag() == "!" ? nlohmann::json(node.Scalar()) : plain_scalar(node.Scalar());
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (std::size_t i = 0; i < node.size(); ++i)
        out.push_back(convert(node[i], fmt::format("{}[{}]", path, i), depth + 1, max_depth));
      return out;
    }
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto &entry : node) {
        if (!entry.first.IsScalar())
          throw std::invalid_argument(fmt::format("{}: keys must be strings", path));
        const std::string key = entry.first.Scalar();
        const std::string at = path + "." + key;
        if (out.contains(key)) throw std::invalid_argument(fmt::format("{}: duplicate key", at));
        out[key] = convert(entry.second, at, depth + 1, max_depth);
      }
      return out;
    }
  }
  return nullptr;
}

}  // namespace

nlohmann::json yaml_to_json(const YAML::Node &node, const std::string &path,
                            std::size_t max_depth) {
  return convert(node, path, 0, max_depth);
}

}  // namespace blade::server
