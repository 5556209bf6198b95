// A compiled rule set (docs/http-faults.md, "The compiled rule set") parsed
// and ready to match: regular expressions compiled, header names lowered.
// Never changed once built: the engine swaps whole sets, and a request's
// Decision holds the set its rule belongs to.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fault_engine.hpp"
#include "rule_counters.hpp"
#include "rule_matchers.hpp"

namespace blade::http {

struct Rule {
  std::string id;
  std::string policy;
  StringMatcher path;  // Kind::any when the rule names no path
  std::string method;  // empty: any
  std::vector<HeaderMatcher> headers;
  double percentage = 100;
  std::chrono::milliseconds delay{0};
  std::chrono::milliseconds delay_jitter{0};  // the delay varies by up to this either way
  std::optional<Abort> abort;
  std::int64_t active_from_ms = 0;
  std::int64_t active_until_ms = std::numeric_limits<std::int64_t>::max();  // max: no end
  // Shared with every set that has a rule of this id (see CounterBook).
  std::shared_ptr<RuleCounters> counters;

  bool active_at(std::int64_t now_ms) const {
    return active_from_ms <= now_ms && now_ms < active_until_ms;
  }
  // `path`: path_of(request.target), split once per request.
  bool matches(std::string_view path, const RequestView &request) const;
};

class RuleSet {
 public:
  std::string version;
  std::vector<Rule> rules;  // in the set's order: the first match wins
};

// Parses a compiled rule set's JSON text, keeping only the rules of
// `only_policies` (empty: all) in their order; the rules of other policies
// are not looked at beyond their policy name. Throws std::invalid_argument
// naming the field ("rules[2].match.path.regex (rule \"checkout/0\"): not a
// valid RE2 expression: ..."). The rules' counters are left null.
RuleSet parse_rule_set(std::string_view text, const std::vector<std::string> &only_policies);

// The limits a rule's figures are checked against, shared with the flags'
// checks so both forms accept the same rules.
inline constexpr std::int64_t kMaxDelayMs = 24LL * 3600 * 1000;  // a day
inline constexpr int kMinAbortStatus = 200;
inline constexpr int kMaxAbortStatus = 599;
inline constexpr std::size_t kMaxRuleIdBytes = 256;

}  // namespace blade::http
