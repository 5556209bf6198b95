// The store's private state, shared by the files that implement Store's
// methods (store.cpp for experiments, preparations and the audit log;
// policy_store.cpp for HTTP fault policies), so each table's SQL lives in a
// file of its own.
//
// One connection does everything, under one mutex. With locking_mode
// EXCLUSIVE it holds the file's lock from open to close, so SQLite takes no
// lock per transaction and keeps the WAL index in the heap; a second bladed
// on the same file is refused at open. Reads and writes are each a few
// hundred microseconds at most, so serialising them costs less than the
// thread hops and lock calls of a writer beside a pool of readers did.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <type_traits>

#include "../external/child_process.hpp"  // UniqueFd
#include "audit_backlog.hpp"
#include "blade/core/store/store.hpp"
#include "experiment_counts.hpp"
#include "sqlite_db.hpp"
#include "store_upkeep.hpp"

namespace blade {

struct Store::Impl {
  Impl(const std::filesystem::path &given, std::chrono::milliseconds busy_timeout);
  ~Impl();

  // Runs f in one write transaction (BEGIN IMMEDIATE ... COMMIT) that also
  // carries every audit line queued so far. f must not open a transaction
  // of its own; it records its experiment row changes in `counts`, which
  // take effect only if the commit does.
  template <class F>
  decltype(auto) write(F &&f) {
    std::lock_guard lock(mutex);
    Write transaction(*this);
    if constexpr (std::is_void_v<std::invoke_result_t<F &, sqlite::Connection &>>) {
      f(*db);
      transaction.commit();
    } else {
      auto result = f(*db);
      transaction.commit();
      return result;
    }
  }

  template <class F>
  decltype(auto) read(F &&f) {
    std::lock_guard lock(mutex);
    return f(*db);
  }

  // A checkpoint (SQLITE_CHECKPOINT_<mode>) under the mutex; true when the
  // WAL was moved completely.
  bool checkpoint(int mode) {
    std::lock_guard lock(mutex);
    return db->checkpoint(mode);
  }

  // fdatasyncs the write-ahead log through a read-only descriptor of its
  // own, WITHOUT `mutex`: a sync of megabytes would otherwise hold every
  // request behind it, and a commit made after the mutex was let go only
  // adds to the log, so a sync that starts after a commit covers it.
  // Error(Unavailable) when the log cannot be opened or synced. The first
  // call also fsyncs the log's directory, once, as SQLite's own first sync
  // of a new log does, so the log's name survives a power cut as well.
  void sync_wal_file();

  // The open write transaction of write().
  class Write {
   public:
    explicit Write(Impl &impl);
    ~Write();  // rolls back (and forgets counted changes) unless committed
    Write(const Write &) = delete;
    Write &operator=(const Write &) = delete;
    void commit();

   private:
    Impl &impl_;
    sqlite::Transaction transaction_;
    bool committed_ = false;
  };

  std::filesystem::path file;  // as given by the caller
  std::mutex mutex;
  std::unique_ptr<sqlite::Connection> db;  // guarded by mutex
  int version = 0;
  ExperimentCounts counts;  // guarded by mutex
  AuditBacklog backlog;     // locks itself
  // The WAL opened read-only for fdatasync alone (sync_wal_file), opened on
  // first use and kept for the store's life: SQLite takes no POSIX lock on
  // the WAL (only on the database file), so this descriptor's close can
  // drop none of its locks. wal_mutex guards the opening only; once valid
  // the descriptor never changes until the store closes, so it is used
  // after the mutex was let go.
  std::mutex wal_mutex;
  detail::UniqueFd wal_fd;              // guarded by wal_mutex
  std::unique_ptr<StoreUpkeep> upkeep;  // last: its thread uses all of the above
};

}  // namespace blade
