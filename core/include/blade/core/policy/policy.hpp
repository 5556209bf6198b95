// HTTP fault-injection policies (the FaultInjectionPolicy of the HTTP fault
// docs): rules of match + fault, managed over /v1/policies, compiled into one
// priority-sorted rule set that data planes (the http plugin's proxy, or an
// external one over /v1/config/stream) apply.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "blade/core/model/error.hpp"
#include "blade/core/model/experiment.hpp"  // SystemTime

namespace blade {

// The topic (TopicHub, host API subscribe) carrying the compiled rule set.
inline constexpr const char *kHttpRulesTopic = "http.rules";

struct FaultPolicy {
  std::string name;              // metadata.name: [a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?
  std::int64_t version = 0;      // 1 at create, +1 per update
  nlohmann::json spec;           // the validated spec, normalised, as stored
  std::int64_t start_delay_ms = 0;
  std::int64_t duration_seconds = 0;  // 0: until deleted
  SystemTime created_at{};
  SystemTime updated_at{};
  // When its rules start to apply: updated_at + start_delay_ms (an update
  // restarts the window).
  SystemTime active_from{};
  // active_from + duration_seconds; none for duration 0. The daemon deletes
  // the policy at this time.
  std::optional<SystemTime> expires_at;
};

// What a request body asks for, validated: every field checked, each error
// an Error(InvalidArgument) whose details name the field by its path
// ("spec.rules[2].match.path.regex"). `version` is metadata.version when
// given (an integer, or a string of one), for PUT's optimistic check.
struct PolicyDraft {
  std::string name;
  std::optional<std::int64_t> expected_version;
  nlohmann::json spec;
  std::int64_t start_delay_ms = 0;
  std::int64_t duration_seconds = 0;
};

PolicyDraft parse_policy(const nlohmann::json &body);

// The errors of a policy's name and version, one wording for the service,
// the store and the routes: NotFound; AlreadyExists naming metadata.name;
// AlreadyExists naming metadata.version (the stored version is not the
// one the writer read).
Error policy_not_found(const std::string &name);
Error policy_exists(const std::string &name);
Error policy_version_conflict(const std::string &name, std::int64_t stored,
                              std::int64_t expected);

// The API shape: {"apiVersion","kind","metadata":{"name","version",
// "created_at","updated_at"},"spec":{...},"status":{"active_from",
// "expires_at"}} (times RFC 3339, version as a string as the seed has it).
nlohmann::json to_json(const FaultPolicy &p);

// {"version": "<16 hex: a hash of the rules' text>", "rules": [...]}: every
// rule of every policy, highest priority first, then policy name, then rule
// index; the format is the one docs/http-faults.md documents for data planes.
// The same policies always give the same text and version.
std::string compile_rule_set(const std::vector<FaultPolicy> &policies);

}  // namespace blade
