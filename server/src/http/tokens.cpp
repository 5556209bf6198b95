#include "tokens.hpp"

#include <fstream>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "auth.hpp"
#include "blade/core/model/experiment.hpp"

namespace blade::server {
namespace {

using Clock = std::chrono::system_clock;

std::string first_line_of(const std::string &file) {
  std::ifstream in(file);
  if (!in) throw std::invalid_argument(fmt::format("cannot read {}", file));
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
    line.pop_back();
  return line;
}

}  // namespace

std::string_view to_string(Role role) {
  return role == Role::Admin ? "admin" : "viewer";
}

TokenTable::TokenTable(std::vector<ApiToken> tokens) : tokens_(std::move(tokens)) {
  std::set<std::string> names, secrets;
  for (const auto &t : tokens_) {
    if (t.name.empty()) throw std::invalid_argument("tokens: every token needs a name");
    if (t.secret.empty())
      throw std::invalid_argument(fmt::format("tokens[{}]: empty token", t.name));
    if (!names.insert(t.name).second)
      throw std::invalid_argument(fmt::format("tokens[{}]: name used twice", t.name));
    if (!secrets.insert(t.secret).second)
      throw std::invalid_argument(fmt::format("tokens[{}]: same secret as another token", t.name));
  }
}

Authentication TokenTable::authenticate(std::optional<std::string_view> presented,
                                        Clock::time_point now) const {
  if (!presented || presented->empty()) return {Authentication::Outcome::Missing, nullptr};
  const ApiToken *match = nullptr;
  for (const auto &t : tokens_) {
    // No early exit: every token is compared whatever matched before.
    if (constant_time_equal(*presented, t.secret)) match = &t;
  }
  if (!match) return {Authentication::Outcome::Invalid, nullptr};
  if (match->expires && *match->expires <= now) return {Authentication::Outcome::Expired, match};
  return {Authentication::Outcome::Ok, match};
}

std::vector<ApiToken> tokens_from_yaml(const YAML::Node &list) {
  if (!list.IsSequence()) throw std::invalid_argument("tokens: expected a list");
  std::vector<ApiToken> out;
  std::size_t index = 0;
  for (const auto &entry : list) {
    const std::string where = fmt::format("tokens[{}]", index++);
    if (!entry.IsMap()) throw std::invalid_argument(where + ": expected a mapping");
    ApiToken t;
    for (const auto &kv : entry) {
      const auto key = kv.first.as<std::string>();
      if (!kv.second.IsScalar())
        throw std::invalid_argument(fmt::format("{}.{}: expected a single value", where, key));
      const auto value = kv.second.as<std::string>();
      if (key == "name") {
        t.name = value;
      } else if (key == "token") {
        t.secret = value;
      } else if (key == "token-file") {
        try {
          t.secret = first_line_of(value);
        } catch (const std::invalid_argument &e) {
          throw std::invalid_argument(fmt::format("{}.token-file: {}", where, e.what()));
        }
      } else if (key == "role") {
        if (value != "admin" && value != "viewer")
          throw std::invalid_argument(fmt::format("{}.role: expected admin or viewer", where));
        t.role = value == "admin" ? Role::Admin : Role::Viewer;
      } else if (key == "expires") {
        t.expires = parse_rfc3339(value);
        if (!t.expires)
          throw std::invalid_argument(
              fmt::format("{}.expires: '{}' is not an RFC 3339 time such as 2027-01-31T00:00:00Z",
                          where, value));
      } else if (key == "rate-limit") {
        try {
          std::size_t used = 0;
          double r = std::stod(value, &used);
          if (used != value.size() || r < 0) throw std::invalid_argument("");
          t.rate_limit = r;
        } catch (const std::exception &) {
          throw std::invalid_argument(
              fmt::format("{}.rate-limit: expected requests per second >= 0", where));
        }
      } else {
        throw std::invalid_argument(
            fmt::format("{}: unknown key '{}' (name, token, token-file, role, expires, rate-limit)",
                        where, key));
      }
    }
    if (t.name.empty()) throw std::invalid_argument(where + ".name: required");
    if (t.secret.empty()) throw std::invalid_argument(where + ".token: required (or token-file)");
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace blade::server
