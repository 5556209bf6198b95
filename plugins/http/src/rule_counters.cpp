#include "rule_counters.hpp"

#include <algorithm>
#include <vector>

namespace blade::http {
namespace {

struct Snapshot {
  std::string rule;
  std::uint64_t matched = 0;
  std::uint64_t injected = 0;
  std::uint64_t errors = 0;
};

Snapshot read(std::string rule, const RuleCounters &c) {
  return {std::move(rule), c.rules_matched.load(std::memory_order_relaxed),
          c.faults_injected.load(std::memory_order_relaxed),
          c.errors.load(std::memory_order_relaxed)};
}

nlohmann::json series(const Snapshot &s) {
  return {{"labels", {{"rule", s.rule}}},
          {"counters",
           {{"rules_matched", s.matched}, {"faults_injected", s.injected}, {"errors", s.errors}}}};
}

}  // namespace

std::shared_ptr<RuleCounters> CounterBook::for_rule(const std::string &id) {
  std::lock_guard lock(mutex_);
  auto &slot = rules_[id];
  if (!slot) slot = std::make_shared<RuleCounters>();
  return slot;
}

nlohmann::json CounterBook::to_json() const {
  std::vector<Snapshot> rules;
  {
    std::lock_guard lock(mutex_);
    rules.reserve(rules_.size());
    for (const auto &[id, counters] : rules_)
      rules.push_back(read(id, *counters));
  }
  // One series is "all"; when the rules do not fit beside it, one more is
  // "other".
  std::vector<Snapshot> rest;
  if (rules.size() > kMaxSeries - 1) {
    auto busy = [](const Snapshot &s) { return s.matched + s.errors; };
    std::stable_sort(rules.begin(), rules.end(),
                     [&](const Snapshot &a, const Snapshot &b) { return busy(a) > busy(b); });
    rest.assign(std::make_move_iterator(rules.begin() + (kMaxSeries - 2)),
                std::make_move_iterator(rules.end()));
    rules.resize(kMaxSeries - 2);
    std::sort(rules.begin(), rules.end(),
              [](const Snapshot &a, const Snapshot &b) { return a.rule < b.rule; });
  }

  Snapshot all = read("all", totals_);
  nlohmann::json out = nlohmann::json::array();
  out.push_back(series(all));
  out.back()["counters"]["total_requests"] = total_requests_.load(std::memory_order_relaxed);
  for (const Snapshot &s : rules)
    out.push_back(series(s));
  if (!rest.empty()) {
    Snapshot other{"other"};
    for (const Snapshot &s : rest) {
      other.matched += s.matched;
      other.injected += s.injected;
      other.errors += s.errors;
    }
    out.push_back(series(other));
  }
  return {{"series", std::move(out)}};
}

}  // namespace blade::http
