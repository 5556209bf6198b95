// A policy as the store would hold it, made from a parsed body by hand, for
// tests that need one without a service: its window worked out here from
// the documented rule (active from the write + start delay, for duration).
#pragma once

#include <chrono>
#include <cstdint>

#include "blade/core/policy/policy.hpp"

namespace blade::test {

inline FaultPolicy stored_policy(const PolicyDraft &d, SystemTime created, SystemTime updated,
                                 std::int64_t version = 1) {
  FaultPolicy p;
  p.name = d.name;
  p.version = version;
  p.spec = d.spec;
  p.start_delay_ms = d.start_delay_ms;
  p.duration_seconds = d.duration_seconds;
  p.created_at = created;
  p.updated_at = updated;
  p.active_from = updated + std::chrono::milliseconds(d.start_delay_ms);
  if (d.duration_seconds > 0) p.expires_at = p.active_from + std::chrono::seconds(d.duration_seconds);
  return p;
}

}  // namespace blade::test
