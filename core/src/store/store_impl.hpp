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
  std::unique_ptr<StoreUpkeep> upkeep;  // last: its thread uses all of the above
};

}  // namespace blade
