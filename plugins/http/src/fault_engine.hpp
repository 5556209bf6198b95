// What the proxy asks for every request: which rule of the current rule set
// matches it, and whether this request gets the fault (its percentage drawn
// per request). Holds the rule set (replaced whole on every update, never
// edited) and the counters, which outlive updates: a rule keeps its counts
// across rule-set versions as long as its id stays.
//
// The rule set is the compiled rule set of docs/http-faults.md, from the
// daemon's policies (topic "http.rules") or built from a delay/abort
// experiment's flags.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace blade::http {

struct HeaderField {
  std::string_view name;  // as received; matched case-insensitively
  std::string_view value;
};

// The parts of a request a rule can match.
struct RequestView {
  std::string_view method;  // as received, e.g. "GET"
  std::string_view target;  // the request target, path and query: "/api/x?y=1"
  std::span<const HeaderField> headers;
};

struct Abort {
  int status = 503;
  std::string body;
};

class RuleSet;  // parsed and compiled (RE2) rules: fault_engine.cpp
struct Rule;

// The answer for one request. Keeps the rule set it came from alive, so a
// concurrent update never leaves it dangling.
struct Decision {
  std::shared_ptr<const RuleSet> rules;
  const Rule *rule = nullptr;     // the matching rule; null: none matched
  bool inject = false;            // the percentage drew this request
  std::chrono::milliseconds delay{0};  // hold the request this long first
  const Abort *abort = nullptr;   // then answer this instead of forwarding
  std::string_view rule_id() const;    // "" when no rule matched
};

class FaultEngine {
 public:
  // `only_policies`: apply only rules of these policies (empty: all).
  explicit FaultEngine(std::vector<std::string> only_policies = {});
  ~FaultEngine();
  FaultEngine(const FaultEngine &) = delete;
  FaultEngine &operator=(const FaultEngine &) = delete;

  // Replaces the rule set with a compiled rule set's JSON text. Throws
  // std::invalid_argument naming the rule and field for a text it cannot
  // use; the previous set then stays.
  void update(std::string_view rule_set_json);
  // The version of the set in use ("" before the first update).
  std::string version() const;
  std::size_t rule_count() const;

  // Thread-safe, and never waits for an update's parse (a lock is held
  // only to copy the set's pointer; matching runs outside it): counts the
  // request, finds the first active rule matching it at `now_ms` (Unix
  // epoch milliseconds), and draws its percentage.
  Decision decide(const RequestView &request, std::int64_t now_ms);
  // A request that failed (upstream unreachable, reset, bad response):
  // counted as an error on its rule, and in the totals.
  void count_error(const Decision &decision);

  // {"series": [{"labels": {"rule": "all"}, "counters": {"total_requests",
  // "rules_matched", "faults_injected", "errors"}}, {"labels": {"rule":
  // "<id>"}, "counters": {"rules_matched", "faults_injected", "errors"}},
  // ...]}: the shape of the host API's report_counters, also used in the
  // experiment's result and destroy report.
  nlohmann::json counters_json() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The one-rule set of a `http delay` / `http abort` experiment, from its
// flags (path | path-prefix | path-regex, method, header, percent, time and
// offset, or code and body), as compiled rule set JSON with rule id
// "flags/0". Throws std::invalid_argument naming the flag (two path flags,
// a bad regex, a header without '=').
std::string rule_set_from_flags(std::string_view action,
                                const std::vector<std::pair<std::string, std::string>> &flags);

}  // namespace blade::http
