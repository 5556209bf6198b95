// The policy service: create/update/delete/list HTTP fault policies, each
// change persisted with its audit line in one transaction, then the
// compiled rule set republished on the "http.rules" topic (only when its
// version changed). Expired policies are deleted at their deadline and, at
// start(), those that expired while the daemon was down.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "blade/core/experiment/experiment_service.hpp"  // Caller
#include "blade/core/experiment/scheduler.hpp"
#include "blade/core/model/error.hpp"
#include "blade/core/plugin/topic_hub.hpp"
#include "blade/core/policy/policy.hpp"
#include "blade/core/store/store.hpp"

namespace blade {

class PolicyService {
 public:
  PolicyService(Store &store, Scheduler &scheduler, TopicHub &topics);
  ~PolicyService();  // cancels its timers
  PolicyService(const PolicyService &) = delete;
  PolicyService &operator=(const PolicyService &) = delete;

  // Deletes the policies that expired while the daemon was down (audited as
  // "policy.expire" by "system"), publishes the rule set, arms the expiry
  // timers. Call once, before the HTTP routes serve.
  void start();

  // Error(InvalidArgument) for a bad body, Error(AlreadyExists) when the
  // name is taken. Audited as "policy.create".
  FaultPolicy create(const nlohmann::json &body, const Caller &caller);
  // Replaces the spec of `name`: Error(NotFound) if absent,
  // Error(InvalidArgument) when the body names another policy,
  // Error(AlreadyExists) (HTTP 409) when metadata.version is given and is
  // not the stored one. Audited as "policy.update".
  FaultPolicy update(const std::string &name, const nlohmann::json &body, const Caller &caller);
  // Returns the policy as it stood when deleted (read under the same lock
  // as the deletion, so no concurrent update can slip between them).
  // Error(NotFound) if absent. Audited as "policy.delete".
  FaultPolicy remove(const std::string &name, const Caller &caller);

  std::optional<FaultPolicy> get(const std::string &name) const;
  std::vector<FaultPolicy> list() const;  // by name
  // The current compiled rule set (the topic's document).
  std::string rule_set() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace blade
