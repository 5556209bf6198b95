// API tokens: who may call, in which role, until when. The secrets live only
// here; everything else (audit, logs, metrics) sees the token's name.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace blade::server {

// admin may do everything; viewer may only read (GET).
enum class Role { Viewer, Admin };

std::string_view to_string(Role role);

struct ApiToken {
  std::string name;
  std::string secret;
  Role role = Role::Admin;
  std::optional<std::chrono::system_clock::time_point> expires;
  // Requests per second for this token; nullopt: the daemon's rate-limit.
  std::optional<double> rate_limit;
};

struct Authentication {
  enum class Outcome { Ok, Missing, Invalid, Expired };
  Outcome outcome = Outcome::Missing;
  const ApiToken *token = nullptr;  // set for Ok and Expired
};

class TokenTable {
 public:
  TokenTable() = default;
  // Throws std::invalid_argument for an empty or duplicate name or secret.
  explicit TokenTable(std::vector<ApiToken> tokens);

  bool empty() const { return tokens_.empty(); }
  const std::vector<ApiToken> &tokens() const { return tokens_; }

  // Compares the presented secret with every token in constant time (the
  // loop never stops early), so timing tells neither which token nor how
  // much of it matched.
  Authentication authenticate(std::optional<std::string_view> presented,
                              std::chrono::system_clock::time_point now) const;

 private:
  std::vector<ApiToken> tokens_;
};

// The `tokens:` list of the config file:
//   - {name: ci, token: "...", role: admin|viewer, expires: RFC 3339, rate-limit: 20}
// `token-file:` may replace `token:` (first line of the file). Throws
// std::invalid_argument naming the entry and the key.
std::vector<ApiToken> tokens_from_yaml(const YAML::Node &list);

}  // namespace blade::server
