// Values <-> columns, shared by the files that implement Store's methods:
// times are integer milliseconds since the Unix epoch (see store_schema.cpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "blade/core/model/experiment.hpp"  // SystemTime
#include "blade/core/store/store.hpp"       // AuditEntry
#include "sqlite_db.hpp"

namespace blade::store_rows {

inline std::int64_t to_ms(SystemTime t) {
  // floor, not truncation toward zero, so times before 1970 round the same way.
  return std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

inline SystemTime from_ms(std::int64_t ms) {
  return SystemTime(
      std::chrono::duration_cast<SystemTime::duration>(std::chrono::milliseconds(ms)));
}

inline std::optional<std::int64_t> to_ms(const std::optional<SystemTime> &t) {
  if (!t) return std::nullopt;
  return to_ms(*t);
}

inline std::optional<SystemTime> from_ms(std::optional<std::int64_t> ms) {
  if (!ms) return std::nullopt;
  return from_ms(*ms);
}

// Appends one audit line on `c` (inside the caller's transaction, if any);
// returns its id.
std::int64_t insert_audit(sqlite::Connection &c, const AuditEntry &entry);

}  // namespace blade::store_rows
