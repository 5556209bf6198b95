#include "store_schema.hpp"

#include <array>

namespace blade::store_schema {
namespace {

// Conventions: times are integer milliseconds since the Unix epoch, UTC
// (exact to the millisecond, compared as numbers, immune to text format
// drift); an optional time or timeout is NULL when absent; statuses are the
// API's lowercase names; JSON columns hold JSON text. STRICT tables make
// SQLite refuse a value of the wrong type instead of storing it.
//
// Indexes: every list filter is an equality followed by the list order
// (created_at_ms), so each filter reads its rows already sorted and
// LIMIT stops early. The status index also serves the recovery and
// active-experiment queries (status IN (...)); the deadline term of the
// recovery query only needs the few rows in status 'created'.
constexpr std::string_view kV1 = R"sql(
CREATE TABLE experiments (
  id INTEGER PRIMARY KEY,
  uid TEXT NOT NULL UNIQUE,
  scope TEXT NOT NULL,
  target TEXT NOT NULL,
  action TEXT NOT NULL,
  flags_json TEXT NOT NULL,
  status TEXT NOT NULL,
  error TEXT NOT NULL,
  executor TEXT NOT NULL,
  result_json TEXT NOT NULL,
  restore_json TEXT NOT NULL,
  timeout_s INTEGER,
  deadline_ms INTEGER,
  callback TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  started_at_ms INTEGER,
  finished_at_ms INTEGER,
  updated_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX experiments_by_created ON experiments (created_at_ms);
CREATE INDEX experiments_by_status ON experiments (status, created_at_ms);
CREATE INDEX experiments_by_target ON experiments (target, created_at_ms);
CREATE INDEX experiments_by_action ON experiments (action, created_at_ms);
CREATE INDEX experiments_by_scope ON experiments (scope, created_at_ms);

CREATE TABLE preparations (
  id INTEGER PRIMARY KEY,
  uid TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  flags_json TEXT NOT NULL,
  status TEXT NOT NULL,
  error TEXT NOT NULL,
  executor TEXT NOT NULL,
  result_json TEXT NOT NULL,
  restore_json TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX preparations_by_created ON preparations (created_at_ms);
CREATE INDEX preparations_by_status ON preparations (status, created_at_ms);
CREATE INDEX preparations_by_type ON preparations (type, created_at_ms);

-- Append-only; "newest first" is id order, which a wall-clock step cannot
-- reorder.
CREATE TABLE audit (
  id INTEGER PRIMARY KEY,
  time_ms INTEGER NOT NULL,
  actor TEXT NOT NULL,
  remote TEXT NOT NULL,
  action TEXT NOT NULL,
  subject TEXT NOT NULL,
  params_json TEXT NOT NULL,
  outcome TEXT NOT NULL
) STRICT;
)sql";

// Write-ahead restore records need no column (restore_json is written while
// the row is still created); these two keep recovery out of a crash loop.
constexpr std::string_view kV2 = R"sql(
ALTER TABLE experiments ADD COLUMN recovery_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE experiments ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0;
)sql";

// A destroy's report (plugin ABI 1.4) gets a column of its own rather than
// a key inside result_json: result_json stays exactly the create's text
// (whatever keys a plugin puts there, none can collide with the report),
// and a reader that knows nothing of reports reads the row as before. NULL:
// no destroy reported anything.
constexpr std::string_view kV3 = R"sql(
ALTER TABLE experiments ADD COLUMN destroy_result_json TEXT;
)sql";

// HTTP fault policies: one row per policy, its validated spec as JSON (the
// rules; start delay and duration have columns of their own, since expiry
// and windows are computed from them). `version` counts changes from 1, for
// optimistic concurrency. expires_at_ms is NULL for a policy without a
// duration; the partial index finds the expired ones without reading the
// others.
constexpr std::string_view kV4 = R"sql(
CREATE TABLE policies (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  version INTEGER NOT NULL,
  spec_json TEXT NOT NULL,
  start_delay_ms INTEGER NOT NULL,
  duration_s INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  active_from_ms INTEGER NOT NULL,
  expires_at_ms INTEGER
) STRICT;
CREATE INDEX policies_by_expiry ON policies (expires_at_ms) WHERE expires_at_ms IS NOT NULL;
)sql";

constexpr std::array<std::string_view, 4> kMigrations = {kV1, kV2, kV3, kV4};

}  // namespace

std::span<const std::string_view> migrations() {
  return kMigrations;
}

}  // namespace blade::store_schema
