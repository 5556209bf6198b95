// Private RAII wrappers over the sqlite3 C API, so the store reads as SQL and
// data rather than as handle bookkeeping. Every failure becomes a
// blade::Error that names the database file and the reason.
//
// Threading: connections are opened with SQLITE_OPEN_NOMUTEX (SQLite's
// "multi-thread" mode). SQLite then does no locking per connection, so a
// Connection and its statements must be used by one thread at a time; the
// store guarantees with its one mutex. This avoids paying for a mutex inside
// SQLite on every call that our own locking already serialises.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace blade::sqlite {

class Connection;

// One prepared statement. Parameters and columns are numbered as SQLite
// numbers them: parameters from 1, columns from 0.
class Statement {
 public:
  Statement(Connection &connection, std::string_view sql);
  ~Statement();
  Statement(const Statement &) = delete;
  Statement &operator=(const Statement &) = delete;

  void bind(int index, std::string_view text);
  void bind(int index, std::int64_t value);
  // NULL for nullopt.
  void bind(int index, std::optional<std::int64_t> value);

  // True while a row is ready to read; false once the statement is done.
  // The first step of each execution counts as one statement (stats()).
  bool step();
  // Steps to completion; for statements that return no rows.
  void run();

  bool is_null(int column) const;
  std::string text(int column) const;
  std::int64_t int64(int column) const;
  std::optional<std::int64_t> optional_int64(int column) const;

  // Ends the current execution and clears the bindings. Without it a
  // half-read SELECT would keep its read transaction (and in WAL mode its
  // snapshot) open, so later reads would not see newer commits and
  // checkpoints could not finish.
  void reset() noexcept;

 private:
  friend class Connection;
  friend class StatementUse;
  [[noreturn]] void fail(int rc) const;

  Connection &connection_;
  sqlite3_stmt *stmt_ = nullptr;
  bool in_use_ = false;  // checked out of the connection's cache
};

// A cached statement checked out for one use; resets it when the use ends.
class StatementUse {
 public:
  explicit StatementUse(Statement &statement) : statement_(statement) {}
  ~StatementUse();
  StatementUse(const StatementUse &) = delete;
  StatementUse &operator=(const StatementUse &) = delete;

  Statement &operator*() const { return statement_; }
  Statement *operator->() const { return &statement_; }

 private:
  Statement &statement_;
};

// One sqlite3 connection and its cache of prepared statements.
class Connection {
 public:
  // Opens for reading and writing, creating the file if it is missing.
  // `file` is used as given in messages and must be absolute, so that a
  // name starting with "file:" is never taken for a URI.
  Connection(const std::filesystem::path &file, std::chrono::milliseconds busy_timeout);
  ~Connection();
  Connection(const Connection &) = delete;
  Connection &operator=(const Connection &) = delete;

  const std::filesystem::path &file() const { return file_; }
  // The write-ahead log's name as SQLite forms it (next to the file a
  // symlink names, not next to the link). Fixed at open, so readable from
  // any thread.
  const std::filesystem::path &wal_file() const { return wal_file_; }
  std::chrono::milliseconds busy_timeout() const { return busy_timeout_; }
  // True when SQLite opened the file read-only although we asked to write
  // (it silently falls back when the OS refuses write access).
  bool read_only() const;

  // The prepared statement for `sql`, prepared once per connection. Only
  // fixed SQL text belongs here; values are always bound parameters.
  StatementUse prepare(std::string_view sql);
  // Runs one or more statements that take no parameters (migrations).
  void exec(std::string_view sql);
  // The first column of the first row, for PRAGMAs and counts.
  std::string query_text(std::string_view sql);
  std::int64_t query_int64(std::string_view sql);

  // Frees what the connection's page cache holds (it refills on use).
  void release_memory();

  std::int64_t changes() const;
  std::int64_t last_insert_rowid() const;
  bool in_transaction() const;

  // Frames in the WAL after the last commit (0 after a checkpoint that
  // emptied it). Readable from any thread.
  int wal_frames() const { return wal_frames_.load(std::memory_order_relaxed); }
  // sqlite3_wal_checkpoint_v2 with SQLITE_CHECKPOINT_<mode>; true when every
  // frame was moved. Not a statement: stats() do not count it.
  bool checkpoint(int mode);

  // Counted since the connection was opened; readable from any thread.
  std::uint64_t statements() const { return statements_.load(std::memory_order_relaxed); }
  // Write transactions committed: explicit COMMITs and autocommit writes.
  std::uint64_t transactions() const { return transactions_.load(std::memory_order_relaxed); }
  std::uint64_t rows_written() const { return rows_written_.load(std::memory_order_relaxed); }

  // Throws the blade::Error for result code `rc`; `doing` says what failed.
  [[noreturn]] void fail(int rc, std::string_view doing) const;

 private:
  friend class Statement;
  friend class Transaction;
  static int on_wal_commit(void *self, sqlite3 *db, const char *name, int frames);

  std::filesystem::path file_;
  std::filesystem::path wal_file_;
  std::chrono::milliseconds busy_timeout_;
  sqlite3 *db_ = nullptr;
  // Statements must be finalized before the connection closes; the
  // destructor does that first.
  std::map<std::string, std::unique_ptr<Statement>, std::less<>> cache_;
  std::atomic<int> wal_frames_{0};
  std::atomic<std::uint64_t> statements_{0};
  std::atomic<std::uint64_t> transactions_{0};
  std::atomic<std::uint64_t> rows_written_{0};
};

// BEGIN IMMEDIATE ... COMMIT; rolls back unless committed, so an exception
// in the middle of a multi-statement change leaves nothing half-written.
// IMMEDIATE takes the write lock up front, so BUSY surfaces at BEGIN rather
// than halfway through. Every transaction the store opens writes (reads
// are single statements under the store's mutex), so there is no other
// kind, and each commit counts in transactions().
class Transaction {
 public:
  explicit Transaction(Connection &connection);
  ~Transaction();
  Transaction(const Transaction &) = delete;
  Transaction &operator=(const Transaction &) = delete;

  void commit();

 private:
  Connection &connection_;
  bool open_ = true;
};

}  // namespace blade::sqlite
