// The store's private state, shared by the files that implement Store's
// methods (store.cpp for experiments, preparations and the audit log;
// policy_store.cpp for HTTP fault policies), so each table's SQL lives in a
// file of its own.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>

#include "blade/core/store/store.hpp"
#include "sqlite_db.hpp"

namespace blade {

class Checkpointer;  // store.cpp: moves the WAL into the database file

struct Store::Impl {
  Impl(const std::filesystem::path &given, std::chrono::milliseconds busy_timeout);
  ~Impl();

  // Serialises all writes on the one writer connection, which also makes
  // changes() and last_insert_rowid() belong to the caller's statement.
  template <class F>
  decltype(auto) write(F &&f) {
    // The checkpointer hears of every write, even one that throws after
    // changing something.
    struct Notify {
      Impl &impl;
      ~Notify() { impl.note_write(); }
    } notify{*this};
    std::lock_guard lock(write_mutex);
    return f(*writer);
  }

  template <class F>
  decltype(auto) read(F &&f) {
    sqlite::ConnectionPool::Lease lease = readers.acquire();
    return f(*lease);
  }

  void note_write();

  std::filesystem::path file;  // as given by the caller
  std::mutex write_mutex;
  std::unique_ptr<sqlite::Connection> writer;  // guarded by write_mutex
  int version = 0;
  // Declared after the writer so they close first: the writer, closing
  // last, checkpoints the WAL into the main file and removes it.
  sqlite::ConnectionPool readers;
  std::unique_ptr<Checkpointer> checkpointer;
};

}  // namespace blade
