#include "sqlite_db.hpp"

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "blade/core/model/error.hpp"
#include "blade/core/model/log.hpp"

namespace blade::sqlite {
namespace {

// Enough of the SQL to recognise the statement in an error message.
std::string sql_summary(std::string_view sql) {
  constexpr std::size_t kMax = 60;
  std::string out;
  for (char c : sql) {
    if (out.size() >= kMax) {
      out += "...";
      break;
    }
    const bool space = c == ' ' || c == '\n' || c == '\t';
    if (space && (out.empty() || out.back() == ' ')) continue;
    out += space ? ' ' : c;
  }
  return out;
}

bool is_permission_errno(int err) {
  return err == EACCES || err == EPERM || err == EROFS;
}

// The reason as SQLite tells it, plus the OS error where SQLite hides it
// behind "unable to open database file" or "disk I/O error".
std::string reason(int rc, sqlite3 *db) {
  std::string text = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const int primary = rc & 0xff;
  const int err = db ? sqlite3_system_errno(db) : 0;
  if ((primary == SQLITE_CANTOPEN || primary == SQLITE_IOERR) && err != 0)
    text += fmt::format(" ({})", std::strerror(err));
  return text;
}

// The one place SQLite result codes become blade errors. A store that cannot
// be used (locked, read-only, corrupt, full, I/O) is Unavailable; a
// duplicate key is AlreadyExists; anything else means our SQL is wrong.
Error make_error(int rc, sqlite3 *db, const std::filesystem::path &file,
                 std::chrono::milliseconds busy_timeout, std::string_view doing) {
  const std::string why = reason(rc, db);
  const std::string path = file.string();
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error(ErrorCode::Unavailable,
                   fmt::format("database {} is locked by another connection or process (still "
                               "busy after {} ms) while {}: {}",
                               path, busy_timeout.count(), doing, why));
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return Error(ErrorCode::Unavailable,
                   fmt::format("cannot write {}: {} (while {}; the file and its directory must be "
                               "writable, for the -wal and -shm files)",
                               path, why, doing));
    case SQLITE_CANTOPEN:
      if (db && is_permission_errno(sqlite3_system_errno(db)))
        return Error(ErrorCode::Unavailable, fmt::format("cannot write {}: {}", path, why));
      return Error(ErrorCode::Unavailable, fmt::format("cannot open database {}: {}", path, why));
    case SQLITE_FULL:
      return Error(ErrorCode::Unavailable,
                   fmt::format("cannot write {}: {} (while {})", path, why, doing));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Error(ErrorCode::Unavailable,
                   fmt::format("database {} is corrupt: {} (while {})", path, why, doing));
    case SQLITE_IOERR:
    case SQLITE_NOMEM:
    case SQLITE_PROTOCOL:
    case SQLITE_NOLFS:
      return Error(ErrorCode::Unavailable,
                   fmt::format("database {}: {} (while {})", path, why, doing));
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return Error(ErrorCode::AlreadyExists,
                     fmt::format("database {}: {} (while {})", path, why, doing));
      break;
    default:
      break;
  }
  return Error(ErrorCode::Internal, fmt::format("database {}: {} (while {})", path, why, doing));
}

}  // namespace

// ---- Statement ----

Statement::Statement(Connection &connection, std::string_view sql) : connection_(connection) {
  // PERSISTENT: these statements live as long as the connection, which lets
  // SQLite allocate them outside its short-lived lookaside memory.
  const int rc = sqlite3_prepare_v3(connection_.db_, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt_);
    connection_.fail(rc, "preparing " + sql_summary(sql));
  }
}

Statement::~Statement() {
  sqlite3_finalize(stmt_);
}

void Statement::fail(int rc) const {
  connection_.fail(rc, "running " + sql_summary(sqlite3_sql(stmt_)));
}

void Statement::bind(int index, std::string_view text) {
  // A null pointer would bind SQL NULL, not an empty string.
  const char *data = text.data() ? text.data() : "";
  const int rc =
      sqlite3_bind_text64(stmt_, index, data, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) fail(rc);
}

void Statement::bind(int index, std::int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) fail(rc);
}

void Statement::bind(int index, std::optional<std::int64_t> value) {
  const int rc = value ? sqlite3_bind_int64(stmt_, index, *value) : sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) fail(rc);
}

bool Statement::step() {
  // Not busy: this step starts an execution (a first step, or one after
  // the last ran to completion or was reset).
  if (!sqlite3_stmt_busy(stmt_)) connection_.statements_.fetch_add(1, std::memory_order_relaxed);
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) {
    // A write that found no transaction open committed on its own.
    if (!sqlite3_stmt_readonly(stmt_)) {
      connection_.rows_written_.store(static_cast<std::uint64_t>(
                                          sqlite3_total_changes64(connection_.db_)),
                                      std::memory_order_relaxed);
      if (sqlite3_get_autocommit(connection_.db_))
        connection_.transactions_.fetch_add(1, std::memory_order_relaxed);
    }
    return false;
  }
  fail(rc);
}

void Statement::run() {
  while (step()) {
  }
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::string Statement::text(int column) const {
  const auto *data = reinterpret_cast<const char *>(sqlite3_column_text(stmt_, column));
  if (!data) return {};
  // Bytes, not strlen: text may legitimately contain NUL characters.
  return std::string(data, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

std::int64_t Statement::int64(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

std::optional<std::int64_t> Statement::optional_int64(int column) const {
  if (is_null(column)) return std::nullopt;
  return int64(column);
}

void Statement::reset() noexcept {
  // The result code repeats the last step's error, already reported there.
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

StatementUse::~StatementUse() {
  statement_.reset();
  statement_.in_use_ = false;
}

// ---- Connection ----

Connection::Connection(const std::filesystem::path &file, std::chrono::milliseconds busy_timeout)
    : file_(file), busy_timeout_(busy_timeout) {
  const int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  const int rc = sqlite3_open_v2(file_.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    // Build the message while db_ still holds the reason, then release it.
    Error error = make_error(rc, db_, file_, busy_timeout_, "opening");
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw error;
  }
  // SQLite's own name for the log (it resolves symlinks in the file's
  // name), so a descriptor opened by this name is the file it writes.
  if (const char *wal = sqlite3_filename_wal(sqlite3_db_filename(db_, "main")); wal && *wal)
    wal_file_ = wal;
  else
    wal_file_ = file_.string() + "-wal";
  // Extended codes tell a UNIQUE violation from other constraint failures.
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, static_cast<int>(busy_timeout_.count()));
  // SQLite's default page cache (2 MB) would be a fifth of an idle daemon's
  // memory budget; the hot pages (recent rows, the indexes' upper levels)
  // fit in half of that.
  sqlite3_exec(db_, "PRAGMA cache_size=-1024", nullptr, nullptr, nullptr);
  // Replaces SQLite's automatic checkpoint, which would run inside a
  // committing request; the store checkpoints from its own thread.
  sqlite3_wal_hook(db_, &Connection::on_wal_commit, this);
}

int Connection::on_wal_commit(void *self, sqlite3 *, const char *, int frames) {
  static_cast<Connection *>(self)->wal_frames_.store(frames, std::memory_order_relaxed);
  return SQLITE_OK;
}

Connection::~Connection() {
  cache_.clear();
  const int rc = sqlite3_close_v2(db_);
  if (rc != SQLITE_OK)
    log::warn("closing the database failed",
              {{"file", file_.string()}, {"error", sqlite3_errstr(rc)}});
}

bool Connection::read_only() const {
  return sqlite3_db_readonly(db_, "main") == 1;
}

StatementUse Connection::prepare(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end())
    it = cache_.emplace(std::string(sql), std::make_unique<Statement>(*this, sql)).first;
  Statement &statement = *it->second;
  // Reusing a statement that is still being stepped would silently restart it.
  if (statement.in_use_)
    throw Error(ErrorCode::Internal, fmt::format("database {}: statement used twice at once: {}",
                                                 file_.string(), sql_summary(sql)));
  statement.in_use_ = true;
  return StatementUse(statement);
}

void Connection::exec(std::string_view sql) {
  // One statement at a time (not sqlite3_exec), so each is counted.
  while (!sql.empty()) {
    sqlite3_stmt *raw = nullptr;
    const char *tail = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &raw, &tail);
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt *)> stmt(raw, &sqlite3_finalize);
    if (rc != SQLITE_OK) fail(rc, "preparing " + sql_summary(sql));
    if (stmt) {  // null for whitespace or a comment
      statements_.fetch_add(1, std::memory_order_relaxed);
      while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      }
      if (rc != SQLITE_DONE) fail(rc, "running " + sql_summary(sql));
    }
    sql.remove_prefix(static_cast<std::size_t>(tail - sql.data()));
  }
}

std::string Connection::query_text(std::string_view sql) {
  StatementUse statement = prepare(sql);
  return statement->step() ? statement->text(0) : std::string();
}

std::int64_t Connection::query_int64(std::string_view sql) {
  StatementUse statement = prepare(sql);
  return statement->step() ? statement->int64(0) : 0;
}

void Connection::release_memory() {
  sqlite3_db_release_memory(db_);
}

std::int64_t Connection::changes() const {
  return sqlite3_changes64(db_);
}

std::int64_t Connection::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_);
}

bool Connection::in_transaction() const {
  return sqlite3_get_autocommit(db_) == 0;
}

bool Connection::checkpoint(int mode) {
  int frames = 0, moved = 0;
  const int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, mode, &frames, &moved);
  if (rc != SQLITE_OK) fail(rc, "checkpointing the WAL");
  const bool complete = frames == moved;
  if (complete) wal_frames_.store(0, std::memory_order_relaxed);
  return complete;
}

void Connection::fail(int rc, std::string_view doing) const {
  throw make_error(rc, db_, file_, busy_timeout_, doing);
}

// ---- Transaction ----

Transaction::Transaction(Connection &connection) : connection_(connection) {
  connection_.prepare("BEGIN IMMEDIATE")->run();
}

Transaction::~Transaction() {
  // SQLite rolls back by itself after some errors (SQLITE_FULL, IOERR).
  if (!open_ || !connection_.in_transaction()) return;
  try {
    connection_.prepare("ROLLBACK")->run();
  } catch (const std::exception &e) {
    log::warn("rolling back a transaction failed",
              {{"file", connection_.file().string()}, {"error", e.what()}});
  }
}

void Transaction::commit() {
  connection_.prepare("COMMIT")->run();
  open_ = false;
  connection_.transactions_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace blade::sqlite
