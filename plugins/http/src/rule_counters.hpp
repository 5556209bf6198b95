// The fault proxy's counters: totals over every request, and per rule id.
// Requests bump atomics only (relaxed: they are tallies, read as a
// snapshot); the id -> counters map is touched by rule-set updates and
// reports, never by a request, which reaches its rule's counters through a
// pointer the rule set carries.
//
// A rule's counters live as long as the engine: they continue across
// rule-set versions that keep its id, and a rule removed by an update keeps
// its figures (reported until the experiment ends), so the result of an
// experiment accounts for every fault it injected.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

namespace blade::http {

struct RuleCounters {
  std::atomic<std::uint64_t> rules_matched{0};
  std::atomic<std::uint64_t> faults_injected{0};
  std::atomic<std::uint64_t> errors{0};
};

class CounterBook {
 public:
  // The host API's report_counters takes at most this many series.
  static constexpr std::size_t kMaxSeries = 64;

  RuleCounters &totals() { return totals_; }
  void count_request() { total_requests_.fetch_add(1, std::memory_order_relaxed); }

  // The counters of rule `id`, made at its first sight.
  std::shared_ptr<RuleCounters> for_rule(const std::string &id);

  // {"series": [{"labels": {"rule": "all"}, "counters": {"total_requests",
  // "rules_matched", "faults_injected", "errors"}}, {"labels": {"rule": id},
  // "counters": {"rules_matched", "faults_injected", "errors"}}, ...]}, the
  // rules by id. Beyond kMaxSeries, the busiest rules (matches plus errors)
  // keep their own series and the rest are summed under the rule "other"
  // (compiled rule ids hold a '/', so neither "all" nor "other" is one).
  nlohmann::json to_json() const;

 private:
  std::atomic<std::uint64_t> total_requests_{0};
  RuleCounters totals_;
  mutable std::mutex mutex_;  // guards rules_
  std::map<std::string, std::shared_ptr<RuleCounters>, std::less<>> rules_;
};

}  // namespace blade::http
