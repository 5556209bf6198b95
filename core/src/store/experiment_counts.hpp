// Exact counts of stored experiments by (status, scope, target, action),
// kept in memory so a list's total, the active count and the counts by
// status cost no scan of the table: over 100k rows a count(*) was most of
// a filtered page's time. Built at open with one GROUP BY, then changed by
// every write of an experiment row inside its transaction, taking effect
// only when that transaction commits.
//
// Not thread-safe: the store's mutex guards it, as it guards the
// connection whose writes it mirrors.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "blade/core/model/experiment.hpp"
#include "sqlite_db.hpp"

namespace blade {

// What an experiment is counted by. The identity (scope, target, action)
// is fixed at creation; only the status changes.
struct ExperimentKey {
  ExperimentStatus status = ExperimentStatus::Created;
  std::string scope;
  std::string target;
  std::string action;
  auto operator<=>(const ExperimentKey &) const = default;
};

ExperimentKey key_of(const Experiment &e);

class ExperimentCounts {
 public:
  // Replaces everything with what the database holds.
  void load(sqlite::Connection &c);

  // The stored key of a row that is not terminal (created, running or
  // destroying), as of the last commit; nullptr for a terminal row or none.
  // Rows that still change are the few not terminal, so an update learns
  // the status it replaces without reading the row back.
  const ExperimentKey *live(const std::string &uid) const;

  // A row inserted (before empty), updated or deleted (after empty) in the
  // open write transaction.
  void change(const std::string &uid, std::optional<ExperimentKey> before,
              std::optional<ExperimentKey> after);
  void commit();
  void rollback() { pending_.clear(); }

  // Rows matching every filter given (an absent one matches all).
  std::int64_t matching(const std::optional<ExperimentStatus> &status,
                        const std::optional<std::string> &scope,
                        const std::optional<std::string> &target,
                        const std::optional<std::string> &action) const;
  std::map<ExperimentStatus, std::int64_t> by_status() const;

 private:
  struct Change {
    std::string uid;
    std::optional<ExperimentKey> before;
    std::optional<ExperimentKey> after;
  };
  std::map<ExperimentKey, std::int64_t> counts_;  // no zero entries
  std::unordered_map<std::string, ExperimentKey> live_;
  std::vector<Change> pending_;  // the open transaction's, in order
};

}  // namespace blade
