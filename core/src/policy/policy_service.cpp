#include "blade/core/policy/policy_service.hpp"

#include <chrono>

#include <fmt/format.h>

#include "blade/core/model/error.hpp"
#include "blade/core/model/log.hpp"
#include "policy_limits.hpp"

namespace blade {
namespace {

using std::chrono::steady_clock;
using std::chrono::system_clock;

// Milliseconds are what the store keeps: a policy handed back from memory
// reads the same as one read back from the store.
SystemTime now() {
  return std::chrono::floor<std::chrono::milliseconds>(system_clock::now());
}

// Where a system-clock time falls on the steady clock that timers use.
steady_clock::time_point to_steady(SystemTime t) {
  auto left = t - system_clock::now();
  return steady_clock::now() + std::chrono::duration_cast<steady_clock::duration>(left);
}

// A failed expiry (the store unavailable) is tried again this much later.
constexpr auto kExpiryRetry = std::chrono::seconds(5);

// The policy's times from the moment it is written: its window starts
// start_delay_ms later (an update restarts it) and lasts duration_seconds.
void set_window(FaultPolicy &p, SystemTime written) {
  p.updated_at = written;
  p.active_from = written + std::chrono::milliseconds(p.start_delay_ms);
  p.expires_at.reset();
  if (p.duration_seconds > 0) p.expires_at = p.active_from + std::chrono::seconds(p.duration_seconds);
}

// Audit parameters name the policy and its version, never the body (which
// may be large; the server's own request line records that).
AuditEntry audit_entry(const Caller &caller, const std::string &action, const FaultPolicy &p,
                       const std::string &outcome = "ok") {
  AuditEntry a;
  a.time = now();
  a.actor = caller.actor;
  a.remote = caller.remote;
  a.action = action;
  a.subject = p.name;
  nlohmann::json params{{"name", p.name}, {"version", p.version}};
  if (p.expires_at) params["expires_at"] = format_time(*p.expires_at);
  a.params_json = params.dump();
  a.outcome = outcome;
  return a;
}

std::string timer_key(const std::string &name) {
  return "policy:" + name;
}

}  // namespace

struct PolicyService::Impl {
  // What a timer job reaches the service through: null once the service
  // is gone. Held while a job runs, so the destructor waits for it.
  struct Alive {
    std::mutex mutex;
    Impl *impl = nullptr;
  };
  struct Timer {
    Scheduler::TimerId id = 0;
    std::uint64_t generation = 0;  // tells a late job of a replaced timer apart
  };

  Impl(Store &s, Scheduler &sch, TopicHub &t)
      : store(s), scheduler(sch), topics(t), alive(std::make_shared<Alive>()) {
    alive->impl = this;
  }

  // The rule set the stored policies give once `change` is applied (it
  // replaces the policy of its name, or is added; none: a deletion of
  // `deleted`). A create or update that would pass the bounds is refused
  // here, before anything is written; a deletion never is.
  std::string compile_after_locked(const FaultPolicy *change, const std::string &deleted = {}) {
    std::vector<FaultPolicy> policies = store.list_policies();
    std::erase_if(policies, [&](const FaultPolicy &p) {
      return p.name == deleted || (change && p.name == change->name);
    });
    if (!change) return compile_rule_set(policies);
    policies.push_back(*change);
    if (policies.size() > policy_limits::kMaxPolicies)
      throw Error(ErrorCode::ResourceExhausted,
                  fmt::format("at most {} policies may exist; delete one first",
                              policy_limits::kMaxPolicies));
    std::string doc = compile_rule_set(policies);
    if (doc.size() > policy_limits::kMaxRuleSetBytes)
      throw Error(ErrorCode::ResourceExhausted,
                  fmt::format("the compiled rule set would be {} bytes, over the limit of {}; "
                              "delete or shrink a policy first",
                              doc.size(), policy_limits::kMaxRuleSetBytes));
    return doc;
  }

  // Publishes `doc` (the rule set as now committed) unless it is the one
  // last published. Called with `mutex` held, after the change is
  // committed, so subscribers see sets in commit order.
  void publish_locked(std::string doc) {
    // The same text is the same version: the version is a hash of the rules
    // text, which the document holds whole.
    if (last_published && doc == *last_published) return;
    topics.publish(kHttpRulesTopic, std::move(doc));
    // The hub's own copy, shared rather than copied (it may be megabytes).
    last_published = topics.current(kHttpRulesTopic);
  }

  void publish_stored_locked() { publish_locked(compile_rule_set(store.list_policies())); }

  void cancel_locked(const std::string &name) {
    auto it = timers.find(name);
    if (it == timers.end()) return;
    scheduler.cancel(it->second.id);
    timers.erase(it);
  }

  void arm_locked(const std::string &name, SystemTime when) {
    cancel_locked(name);
    const std::uint64_t generation = ++next_generation;
    const Scheduler::TimerId id = scheduler.schedule(
        timer_key(name), to_steady(when), [alive = alive, name, generation] {
          std::lock_guard hold(alive->mutex);
          if (alive->impl) alive->impl->expire(name, generation);
        });
    timers[name] = Timer{id, generation};
  }

  void arm_locked(const FaultPolicy &p) {
    if (p.expires_at)
      arm_locked(p.name, *p.expires_at);
    else
      cancel_locked(p.name);
  }

  // Deletes what has expired by now; `expired` is filled with what went.
  void delete_expired_locked(std::vector<FaultPolicy> &expired) {
    expired = store.delete_expired_policies(now(), [](const FaultPolicy &p) {
      return audit_entry(Caller{"system", ""}, "policy.expire", p);
    });
    for (const FaultPolicy &p : expired) {
      cancel_locked(p.name);
      log::info("policy expired", {{"name", p.name}, {"version", std::to_string(p.version)}});
    }
  }

  // The timer of `name` fired. It may be a late one (cancelled or replaced
  // after it was due), so it deletes only what has really expired, then
  // arms the policy again if it is still there with a later deadline (the
  // system clock stepped back since the timer was armed).
  void expire(const std::string &name, std::uint64_t generation) {
    std::lock_guard lock(mutex);
    auto it = timers.find(name);
    if (it != timers.end() && it->second.generation == generation) timers.erase(it);
    try {
      std::vector<FaultPolicy> expired;
      delete_expired_locked(expired);
      if (!expired.empty()) publish_stored_locked();
      if (timers.count(name)) return;  // re-armed by an update meanwhile
      auto p = store.get_policy(name);
      if (p && p->expires_at) arm_locked(p->name, *p->expires_at);
    } catch (const Error &e) {
      log::error("policy expiry failed; trying again",
                 {{"name", name}, {"error", e.what()},
                  {"retry_s", std::to_string(kExpiryRetry.count())}});
      arm_locked(name, now() + kExpiryRetry);
    }
  }

  Store &store;
  Scheduler &scheduler;
  TopicHub &topics;
  // Serialises changes, from the store write to the publish, so the order
  // subscribers see is the commit order. Policy writes are rare.
  mutable std::mutex mutex;
  TopicHub::Document last_published;  // null until start() publishes
  std::map<std::string, Timer> timers;  // by policy name; guarded by mutex
  std::uint64_t next_generation = 0;
  std::shared_ptr<Alive> alive;
};

PolicyService::PolicyService(Store &store, Scheduler &scheduler, TopicHub &topics)
    : impl_(std::make_unique<Impl>(store, scheduler, topics)) {}

PolicyService::~PolicyService() {
  {
    // Waits for a running timer job; later ones find no service.
    std::lock_guard hold(impl_->alive->mutex);
    impl_->alive->impl = nullptr;
  }
  std::lock_guard lock(impl_->mutex);
  for (const auto &[name, timer] : impl_->timers)
    impl_->scheduler.cancel(timer.id);
}

void PolicyService::start() {
  std::lock_guard lock(impl_->mutex);
  std::vector<FaultPolicy> expired;
  impl_->delete_expired_locked(expired);
  // One read of the stored policies: the set they compile to, and their
  // expiry timers.
  const std::vector<FaultPolicy> stored = impl_->store.list_policies();
  impl_->publish_locked(compile_rule_set(stored));
  for (const FaultPolicy &p : stored)
    impl_->arm_locked(p);
}

FaultPolicy PolicyService::create(const nlohmann::json &body, const Caller &caller) {
  PolicyDraft draft = parse_policy(body);
  std::lock_guard lock(impl_->mutex);
  FaultPolicy p;
  p.name = std::move(draft.name);
  p.version = 1;
  p.spec = std::move(draft.spec);
  p.start_delay_ms = draft.start_delay_ms;
  p.duration_seconds = draft.duration_seconds;
  p.created_at = now();
  set_window(p, p.created_at);
  // A taken name is a conflict (409) before it is anything else.
  if (impl_->store.get_policy(p.name))
    throw policy_exists(p.name);
  std::string doc = impl_->compile_after_locked(&p);
  impl_->store.insert_policy(p, audit_entry(caller, "policy.create", p));
  impl_->arm_locked(p);
  impl_->publish_locked(std::move(doc));
  return p;
}

FaultPolicy PolicyService::update(const std::string &name, const nlohmann::json &body,
                                  const Caller &caller) {
  PolicyDraft draft = parse_policy(body);
  if (draft.name != name) {
    const std::string why = fmt::format("must be {}, the policy being updated", name);
    throw Error(ErrorCode::InvalidArgument, "metadata.name: " + why, {{"metadata.name", why}});
  }
  std::lock_guard lock(impl_->mutex);
  std::optional<FaultPolicy> stored = impl_->store.get_policy(name);
  if (!stored) throw policy_not_found(name);
  if (draft.expected_version && *draft.expected_version != stored->version)
    throw policy_version_conflict(name, stored->version, *draft.expected_version);
  // The same policy again (a re-applied file) changes nothing: no new
  // version, no restarted window, no republish. The attempt is audited.
  if (draft.spec == stored->spec && draft.start_delay_ms == stored->start_delay_ms &&
      draft.duration_seconds == stored->duration_seconds) {
    try {
      impl_->store.append_audit(audit_entry(caller, "policy.update", *stored, "unchanged"));
    } catch (const Error &e) {
      log::error("audit write failed", {{"action", "policy.update"}, {"error", e.what()}});
    }
    return *stored;
  }
  FaultPolicy p = *stored;
  p.version = stored->version + 1;
  p.spec = std::move(draft.spec);
  p.start_delay_ms = draft.start_delay_ms;
  p.duration_seconds = draft.duration_seconds;
  set_window(p, now());
  std::string doc = impl_->compile_after_locked(&p);
  impl_->store.update_policy(p, stored->version, audit_entry(caller, "policy.update", p));
  impl_->arm_locked(p);
  impl_->publish_locked(std::move(doc));
  return p;
}

FaultPolicy PolicyService::remove(const std::string &name, const Caller &caller) {
  std::lock_guard lock(impl_->mutex);
  std::optional<FaultPolicy> stored = impl_->store.get_policy(name);
  if (!stored) throw policy_not_found(name);
  std::string doc = impl_->compile_after_locked(nullptr, name);
  impl_->store.delete_policy(name, audit_entry(caller, "policy.delete", *stored));
  impl_->cancel_locked(name);
  impl_->publish_locked(std::move(doc));
  return std::move(*stored);
}

std::optional<FaultPolicy> PolicyService::get(const std::string &name) const {
  return impl_->store.get_policy(name);
}

std::vector<FaultPolicy> PolicyService::list() const {
  return impl_->store.list_policies();
}

std::string PolicyService::rule_set() const {
  std::lock_guard lock(impl_->mutex);
  if (impl_->last_published) return *impl_->last_published;
  return compile_rule_set(impl_->store.list_policies());
}

}  // namespace blade
