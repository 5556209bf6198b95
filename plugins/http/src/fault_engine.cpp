#include "fault_engine.hpp"

#include <atomic>
#include <mutex>
#include <random>

#include "rule_counters.hpp"
#include "rule_set.hpp"

namespace blade::http {
namespace {

// One generator per thread: requests on different proxy threads draw
// without sharing state or a lock.
std::mt19937_64 &generator() {
  thread_local std::mt19937_64 rng = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  return rng;
}

// Uniform in [0, 100): 53 random bits scaled, which can never reach 100
// (std::generate_canonical may return 1.0 in libstdc++), so a rule at 100%
// always injects and one at 0% never does.
double draw_percent() {
  constexpr double kUnit = 1.0 / static_cast<double>(std::uint64_t{1} << 53);
  return static_cast<double>(generator()() >> 11) * kUnit * 100.0;
}

// The rule's delay varied uniformly in [-jitter, +jitter], never below 0.
std::chrono::milliseconds delay_of(const Rule &rule) {
  if (rule.delay_jitter.count() == 0) return rule.delay;
  std::uniform_int_distribution<std::int64_t> offset(-rule.delay_jitter.count(),
                                                     rule.delay_jitter.count());
  return std::max(std::chrono::milliseconds(0),
                  rule.delay + std::chrono::milliseconds(offset(generator())));
}

void bump(std::atomic<std::uint64_t> &counter) {
  counter.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

std::string_view Decision::rule_id() const {
  return rule ? std::string_view(rule->id) : std::string_view();
}

struct FaultEngine::Impl {
  std::vector<std::string> only_policies;
  // The set in use, replaced whole by update(). A request holds `mutex`
  // only to copy the pointer and matches outside it; an update holds it
  // only to swap the pointer, after the parse, and the old set is freed
  // after it is released. Not std::atomic<std::shared_ptr>: in GCC 12 its
  // load() releases its internal lock with relaxed order, so the pointer it
  // read is not ordered before a later store's write (ThreadSanitizer
  // reports the race, and a weakly ordered CPU could pair a new pointer
  // with the old count). The cost of this lock is measured by the
  // decision benchmark.
  mutable std::mutex mutex;
  std::shared_ptr<const RuleSet> current = std::make_shared<const RuleSet>();
  std::mutex update_mutex;  // one update at a time: the counters' attach and the swap
  CounterBook counters;

  std::shared_ptr<const RuleSet> snapshot() const {
    std::lock_guard lock(mutex);
    return current;
  }
};

FaultEngine::FaultEngine(std::vector<std::string> only_policies) : impl_(std::make_unique<Impl>()) {
  impl_->only_policies = std::move(only_policies);
}

FaultEngine::~FaultEngine() = default;

void FaultEngine::update(std::string_view rule_set_json) {
  auto set = std::make_shared<RuleSet>(parse_rule_set(rule_set_json, impl_->only_policies));
  std::lock_guard lock(impl_->update_mutex);
  for (Rule &rule : set->rules)
    rule.counters = impl_->counters.for_rule(rule.id);
  std::shared_ptr<const RuleSet> previous = std::move(set);
  {
    std::lock_guard swap_lock(impl_->mutex);
    impl_->current.swap(previous);
  }
}

std::string FaultEngine::version() const {
  return impl_->snapshot()->version;
}

std::size_t FaultEngine::rule_count() const {
  return impl_->snapshot()->rules.size();
}

Decision FaultEngine::decide(const RequestView &request, std::int64_t now_ms) {
  impl_->counters.count_request();
  Decision decision;
  decision.rules = impl_->snapshot();
  std::string_view path = path_of(request.target);
  for (const Rule &rule : decision.rules->rules) {
    if (!rule.active_at(now_ms) || !rule.matches(path, request)) continue;
    decision.rule = &rule;
    bump(rule.counters->rules_matched);
    bump(impl_->counters.totals().rules_matched);
    if (draw_percent() < rule.percentage) {
      decision.inject = true;
      decision.delay = delay_of(rule);
      decision.abort = rule.abort ? &*rule.abort : nullptr;
      bump(rule.counters->faults_injected);
      bump(impl_->counters.totals().faults_injected);
    }
    break;
  }
  return decision;
}

void FaultEngine::count_error(const Decision &decision) {
  bump(impl_->counters.totals().errors);
  if (decision.rule) bump(decision.rule->counters->errors);
}

nlohmann::json FaultEngine::counters_json() const {
  return impl_->counters.to_json();
}

}  // namespace blade::http
