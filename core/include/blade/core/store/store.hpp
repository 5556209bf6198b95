// Persistence in SQLite (no ORM): experiments, preparations, HTTP fault
// policies, the audit log, numbered schema migrations (PRAGMA
// user_version). WAL mode, one writer connection, a pool of reader
// connections, prepared statements.
// Every failure is a blade::Error (Unavailable for a store that cannot be
// used, Internal for a bug); nothing is silently lost.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blade/core/model/experiment.hpp"
#include "blade/core/policy/policy.hpp"

namespace blade {

struct ExperimentFilter {
  std::optional<ExperimentStatus> status;
  std::optional<std::string> target;
  std::optional<std::string> action;
  std::optional<std::string> scope;
  std::int64_t limit = 50;  // 1..1000
  std::int64_t offset = 0;
  bool ascending = false;  // by created_at, then insertion order
  // Keyset pagination: the `next` cursor of the previous page (opaque to
  // callers). The page then starts right after that row, whatever was
  // inserted meanwhile, at the cost of one index seek instead of skipping
  // `offset` rows. Combined with offset it is an InvalidArgument.
  std::optional<std::string> after;
};

struct PreparationFilter {
  std::optional<PreparationStatus> status;
  std::optional<std::string> type;
  std::int64_t limit = 50;
  std::int64_t offset = 0;
  bool ascending = false;
  std::optional<std::string> after;  // as ExperimentFilter::after
};

template <class T>
struct Page {
  std::vector<T> items;
  std::int64_t total = 0;  // matching rows, ignoring limit/offset
  // The cursor to pass as `after` for the page that follows; empty when
  // this page is the last one.
  std::string next;
};

// What the store has done since it was opened, counted (not estimated):
// the regression guard and /metrics read it.
struct StoreStats {
  std::uint64_t transactions = 0;  // write transactions committed (an autocommit write is one)
  std::uint64_t statements = 0;    // SQL statements stepped, reads and writes, BEGIN/COMMIT included
  std::uint64_t rows_written = 0;  // rows inserted, updated or deleted (rolled back ones too)
};

struct AuditEntry {
  std::int64_t id = 0;  // assigned by the store
  SystemTime time{};
  std::string actor;    // token identity, "system" for the daemon itself; never a token
  std::string remote;   // client address, empty for the daemon itself
  std::string action;   // "experiment.create", "experiment.recover", "auth.failure", ...
  std::string subject;  // uid or route
  std::string params_json = "{}";
  std::string outcome;  // "ok" or the error code and message
};

class Store {
 public:
  // Opens (creating if needed) and migrates the database. Throws
  // blade::Error(Unavailable) naming the file and the reason for a corrupt,
  // read-only, locked or newer-schema database, or a missing directory (the
  // directory is never created here). `busy_timeout` is how long any
  // operation waits for a lock another process holds before it fails with
  // Unavailable. Every method is safe to call from any thread.
  explicit Store(const std::filesystem::path &file,
                 std::chrono::milliseconds busy_timeout = std::chrono::milliseconds(5000));
  ~Store();
  Store(const Store &) = delete;
  Store &operator=(const Store &) = delete;

  const std::filesystem::path &file() const;
  // Gives the page caches of its connections back to the heap; they refill
  // on use. For an idle daemon, before it returns free heap to the OS.
  void release_memory();
  int schema_version() const;

  // Throws Error(AlreadyExists) if the uid is taken. With `audit`, the
  // audit line is committed in the same transaction.
  void insert_experiment(const Experiment &e, const AuditEntry *audit = nullptr);
  // Replaces every field of the row with uid e.uid but its identity (scope,
  // target, action, created_at: fixed at creation, never rewritten);
  // Error(NotFound) if none.
  // With `audit`, the audit line is committed in the same transaction, so an
  // outcome and its record are never split by a crash.
  void update_experiment(const Experiment &e, const AuditEntry *audit = nullptr);
  // The write-ahead restore record of an experiment still `created`,
  // fsynced before it returns (the plugin's next step depends on it). When
  // no row for e.uid exists yet (a create whose executor writes ahead is
  // stored first by its first record), `e` is inserted as created with the
  // record. Error(FailedPrecondition) if the row exists and is not created.
  void save_restore_record(const Experiment &e, const std::string &restore_json, SystemTime now);
  // Removes a row still `created` with no restore record: a create the
  // executor refused before doing anything, which leaves no trace but its
  // audit line (committed with the removal). Error(NotFound) if no such row.
  void forget_refused_experiment(const std::string &uid, const AuditEntry &audit);
  std::optional<Experiment> get_experiment(const std::string &uid) const;
  Page<Experiment> list_experiments(const ExperimentFilter &filter) const;
  // Running or destroying, or with a deadline at or before `deadline_before`.
  std::vector<Experiment> experiments_needing_recovery(SystemTime deadline_before) const;
  // Status running or destroying (for SIGTERM and the active cap).
  std::vector<Experiment> active_experiments() const;
  // Every row still created (a create in flight, or one a crash cut short),
  // oldest first: all of them, unpaged, for recovery and shutdown.
  std::vector<Experiment> created_experiments() const;
  std::int64_t count_active_experiments() const;
  // How many experiments are in each status (statuses with none are absent).
  std::map<ExperimentStatus, std::int64_t> count_experiments_by_status() const;
  std::int64_t count_quarantined_experiments() const;

  void insert_preparation(const Preparation &p);
  void update_preparation(const Preparation &p);
  std::optional<Preparation> get_preparation(const std::string &uid) const;
  Page<Preparation> list_preparations(const PreparationFilter &filter) const;

  // HTTP fault policies. Each change is committed with its audit line in
  // one transaction. Error(AlreadyExists) if the name is taken.
  void insert_policy(const FaultPolicy &p, const AuditEntry &audit);
  // Replaces the row named p.name if its version is still
  // `expected_version` (checked inside the transaction, so of two writers
  // that read the same version only one wins): Error(NotFound) if no such
  // policy, Error(AlreadyExists) naming both versions if another change
  // came first.
  void update_policy(const FaultPolicy &p, std::int64_t expected_version,
                     const AuditEntry &audit);
  // Error(NotFound) if no such policy.
  void delete_policy(const std::string &name, const AuditEntry &audit);
  std::optional<FaultPolicy> get_policy(const std::string &name) const;
  std::vector<FaultPolicy> list_policies() const;  // by name
  // Deletes every policy whose expires_at is at or before `now`, each with
  // the audit line `audit` makes for it, all in one transaction; returns
  // the deleted policies. A policy an update gave a later deadline is no
  // longer expired, so a late expiry timer deletes nothing.
  std::vector<FaultPolicy> delete_expired_policies(
      SystemTime now, const std::function<AuditEntry(const FaultPolicy &)> &audit);

  // An audit line that needs no transaction of its own (the HTTP request
  // log): written with the next write transaction, or by the store's own
  // thread within ~100 ms when no write comes. Bounded: a caller waits when
  // too many are pending.
  void queue_audit(AuditEntry entry);
  // Returns once every line queued before the call is committed.
  void flush_audit();

  StoreStats stats() const;

  // Returns the entry's id.
  std::int64_t append_audit(const AuditEntry &entry);
  // Newest first.
  std::vector<AuditEntry> list_audit(std::int64_t limit, std::int64_t offset = 0) const;

 private:
  friend class StoreUpkeep;  // its thread works on Impl
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace blade
