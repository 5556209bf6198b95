#include "blade/core/store/store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "blade/core/model/bounded_json.hpp"
#include "blade/core/model/error.hpp"
#include "blade/core/model/log.hpp"
#include "experiment_counts.hpp"
#include "page_cursor.hpp"
#include "sqlite_db.hpp"
#include "store_impl.hpp"
#include "store_rows.hpp"
#include "store_schema.hpp"

namespace blade {
namespace {

using sqlite::Connection;
using sqlite::Statement;
using sqlite::Transaction;
using store_rows::from_ms;
using store_rows::insert_audit;
using store_rows::to_ms;

constexpr std::int64_t kMaxPageSize = 1000;
// The WAL file is cut back to this when SQLite restarts it after a
// checkpoint, so a burst does not leave a large file behind.
constexpr std::int64_t kWalSizeLimit = 8 * 1024 * 1024;

// ---- values <-> columns ----

std::string flags_to_json(const FlagValues &flags) {
  try {
    // Strict: replacing bytes would silently change what gets rolled back.
    return nlohmann::json(flags).dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception &e) {
    throw Error(ErrorCode::InvalidArgument, "flags are not valid UTF-8",
                {{"flags", fmt::format("not valid UTF-8: {}", e.what())}});
  }
}

[[noreturn]] void throw_bad_row(const std::filesystem::path &file, std::string_view what,
                                std::string_view uid, std::string_view problem) {
  throw Error(ErrorCode::Internal,
              fmt::format("database {}: {} {}: {}", file.string(), what, uid, problem));
}

FlagValues flags_from_json(const std::string &text, const std::filesystem::path &file,
                           std::string_view what, std::string_view uid) {
  const nlohmann::json parsed = parse_bounded_json(text).value;
  if (!parsed.is_object()) throw_bad_row(file, what, uid, "stored flags are not a JSON object");
  FlagValues flags;
  for (const auto &[name, value] : parsed.items()) {
    if (!value.is_string()) throw_bad_row(file, what, uid, "stored flag is not a string: " + name);
    flags.emplace(name, value.get<std::string>());
  }
  return flags;
}

// ---- paging ----

void validate_page(std::int64_t limit, std::int64_t offset) {
  if (limit < 1 || limit > kMaxPageSize)
    throw Error(ErrorCode::InvalidArgument, "invalid limit",
                {{"limit", fmt::format("must be between 1 and {}, got {}", kMaxPageSize, limit)}});
  if (offset < 0)
    throw Error(ErrorCode::InvalidArgument, "invalid offset",
                {{"offset", fmt::format("must not be negative, got {}", offset)}});
}

// A WHERE clause of equality filters joined by AND. Column names come from
// this file only; values are always bound, never written into the SQL.
class Where {
 public:
  void equals(std::string_view column, const std::optional<std::string> &value) {
    if (!value) return;
    sql_ += values_.empty() ? " WHERE " : " AND ";
    sql_ += column;
    sql_ += " = ?";
    values_.push_back(*value);
  }
  const std::string &sql() const { return sql_; }
  bool empty() const { return values_.empty(); }
  // Binds from parameter 1; returns the next free parameter number.
  int bind(Statement &statement) const {
    int index = 1;
    for (const std::string &value : values_)
      statement.bind(index++, value);
    return index;
  }

 private:
  std::string sql_;
  std::vector<std::string> values_;
};

struct PageQuery {
  std::string_view table;
  std::string_view index;  // INDEXED BY this one, if not empty
  std::string_view columns;  // read_row's; created_at_ms and id are added after them
  Where where;
  bool ascending = false;
  std::int64_t limit = 0;
  std::int64_t offset = 0;
  const std::optional<std::string> *after = nullptr;  // the filter's keyset cursor
};

// The rows of one page, cut by offset or by cursor. `total` is the caller's
// (a table whose count is kept in memory), or counted here when absent.
// One row more than the page is read: whether it exists says whether the
// page gets a `next`.
template <class T, class ReadRow>
Page<T> read_page(Connection &connection, const PageQuery &query,
                  std::optional<std::int64_t> total, ReadRow read_row) {
  validate_page(query.limit, query.offset);
  std::optional<page_cursor::Position> after;
  if (query.after && *query.after) {
    if (query.offset != 0)
      throw Error(ErrorCode::InvalidArgument, "after and offset together",
                  {{"after", "cannot be combined with a non-zero offset"}});
    after = page_cursor::decode(**query.after);
  }
  Page<T> page;
  if (total) {
    page.total = *total;
    if (page.total == 0) return page;  // no row to look for
  } else {
    auto count = connection.prepare(
        fmt::format("SELECT count(*) FROM {}{}", query.table, query.where.sql()));
    query.where.bind(*count);
    count->step();
    page.total = count->int64(0);
  }
  const std::string_view direction = query.ascending ? "ASC" : "DESC";
  // The position as two terms an index on (filter, created_at_ms) serves:
  // a range on created_at_ms, then the id (the index's hidden last
  // column) among rows of the same millisecond.
  std::string keyset;
  if (after)
    keyset = fmt::format("{} created_at_ms {}= ? AND (created_at_ms {} ? OR id {} ?)",
                         query.where.empty() ? " WHERE" : " AND", query.ascending ? '>' : '<',
                         query.ascending ? '>' : '<', query.ascending ? '>' : '<');
  const std::string table = query.index.empty()
                                ? std::string(query.table)
                                : fmt::format("{} INDEXED BY {}", query.table, query.index);
  auto rows = connection.prepare(fmt::format(
      "SELECT {}, created_at_ms, id FROM {}{}{} ORDER BY created_at_ms {}, id {} LIMIT ? OFFSET ?",
      query.columns, table, query.where.sql(), keyset, direction, direction));
  int next = query.where.bind(*rows);
  if (after) {
    rows->bind(next++, after->created_at_ms);
    rows->bind(next++, after->created_at_ms);
    rows->bind(next++, after->id);
  }
  rows->bind(next, query.limit + 1);
  rows->bind(next + 1, query.offset);
  const int position_column =
      static_cast<int>(std::count(query.columns.begin(), query.columns.end(), ',')) + 1;
  page_cursor::Position last;
  while (rows->step()) {
    if (static_cast<std::int64_t>(page.items.size()) == query.limit) {
      page.next = page_cursor::encode(last);
      break;
    }
    page.items.push_back(read_row(*rows));
    last = {rows->int64(position_column), rows->int64(position_column + 1)};
  }
  return page;
}

// ---- experiments ----

constexpr std::string_view kExperimentColumns =
    "uid, scope, target, action, flags_json, status, error, executor, result_json, restore_json, "
    "timeout_s, deadline_ms, callback, created_at_ms, started_at_ms, finished_at_ms, "
    "updated_at_ms, recovery_attempts, quarantined, destroy_result_json";

// Parameter numbers shared by the statements below: ?1 the uid, ?2-?5 the
// identity fixed at creation, ?6-?20 the state that changes over the
// lifecycle. An empty destroy report is stored as NULL (none).
constexpr std::string_view kInsertExperiment =
    "INSERT INTO experiments (uid, scope, target, action, created_at_ms, flags_json, status, "
    "error, executor, result_json, restore_json, timeout_s, deadline_ms, callback, "
    "started_at_ms, finished_at_ms, updated_at_ms, recovery_attempts, quarantined, "
    "destroy_result_json) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
    "?19, NULLIF(?20, ''))";

// The identity columns (scope, target, action, created_at_ms) are never
// updated: they are fixed at creation, and SQLite rewrites every index on a
// column named in SET, changed or not (four of the five list indexes). A
// status change then touches the status index only.
constexpr std::string_view kUpdateExperimentState =
    "UPDATE experiments SET flags_json = ?6, status = ?7, error = ?8, executor = ?9, "
    "result_json = ?10, restore_json = ?11, timeout_s = ?12, deadline_ms = ?13, callback = ?14, "
    "started_at_ms = ?15, finished_at_ms = ?16, updated_at_ms = ?17, recovery_attempts = ?18, "
    "quarantined = ?19, destroy_result_json = NULLIF(?20, '') WHERE uid = ?1";

void bind_identity(Statement &s, const Experiment &e) {
  s.bind(1, e.uid);
  s.bind(2, e.scope);
  s.bind(3, e.target);
  s.bind(4, e.action);
  s.bind(5, to_ms(e.created_at));
}

void bind_state(Statement &s, const Experiment &e, const std::string &flags_json) {
  s.bind(1, e.uid);
  s.bind(6, flags_json);
  s.bind(7, to_string(e.status));
  s.bind(8, e.error);
  s.bind(9, e.executor);
  s.bind(10, e.result_json);
  s.bind(11, e.restore_json);
  s.bind(12, e.timeout_s);
  s.bind(13, to_ms(e.deadline));
  s.bind(14, e.callback);
  s.bind(15, to_ms(e.started_at));
  s.bind(16, to_ms(e.finished_at));
  s.bind(17, to_ms(e.updated_at));
  s.bind(18, e.recovery_attempts);
  s.bind(19, std::int64_t{e.quarantined ? 1 : 0});
  s.bind(20, e.destroy_result_json);
}

// Column numbers follow kExperimentColumns.
Experiment read_experiment(const Statement &s, const std::filesystem::path &file) {
  Experiment e;
  e.uid = s.text(0);
  e.scope = s.text(1);
  e.target = s.text(2);
  e.action = s.text(3);
  e.flags = flags_from_json(s.text(4), file, "experiment", e.uid);
  const std::string status = s.text(5);
  const auto parsed = experiment_status_from_string(status);
  if (!parsed) throw_bad_row(file, "experiment", e.uid, "unknown status \"" + status + "\"");
  e.status = *parsed;
  e.error = s.text(6);
  e.executor = s.text(7);
  e.result_json = s.text(8);
  e.restore_json = s.text(9);
  e.timeout_s = s.optional_int64(10);
  e.deadline = from_ms(s.optional_int64(11));
  e.callback = s.text(12);
  e.created_at = from_ms(s.int64(13));
  e.started_at = from_ms(s.optional_int64(14));
  e.finished_at = from_ms(s.optional_int64(15));
  e.updated_at = from_ms(s.int64(16));
  e.recovery_attempts = s.int64(17);
  e.quarantined = s.int64(18) != 0;
  e.destroy_result_json = s.text(19);  // NULL reads as "": none
  return e;
}

std::vector<Experiment> read_experiments(Statement &s, const std::filesystem::path &file) {
  std::vector<Experiment> out;
  while (s.step())
    out.push_back(read_experiment(s, file));
  return out;
}

int filters_given(const ExperimentFilter &filter) {
  return int{filter.status.has_value()} + int{filter.target.has_value()} +
         int{filter.action.has_value()} + int{filter.scope.has_value()};
}

// ---- preparations ----

constexpr std::string_view kPreparationColumns =
    "uid, type, flags_json, status, error, executor, result_json, restore_json, created_at_ms, "
    "updated_at_ms";

constexpr std::string_view kInsertPreparation =
    "INSERT INTO preparations (uid, type, flags_json, status, error, executor, result_json, "
    "restore_json, created_at_ms, updated_at_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

constexpr std::string_view kUpdatePreparation =
    "UPDATE preparations SET type = ?2, flags_json = ?3, status = ?4, error = ?5, executor = ?6, "
    "result_json = ?7, restore_json = ?8, created_at_ms = ?9, updated_at_ms = ?10 WHERE uid = ?1";

void bind_preparation(Statement &s, const Preparation &p, const std::string &flags_json) {
  s.bind(1, p.uid);
  s.bind(2, p.type);
  s.bind(3, flags_json);
  s.bind(4, to_string(p.status));
  s.bind(5, p.error);
  s.bind(6, p.executor);
  s.bind(7, p.result_json);
  s.bind(8, p.restore_json);
  s.bind(9, to_ms(p.created_at));
  s.bind(10, to_ms(p.updated_at));
}

Preparation read_preparation(const Statement &s, const std::filesystem::path &file) {
  Preparation p;
  p.uid = s.text(0);
  p.type = s.text(1);
  p.flags = flags_from_json(s.text(2), file, "preparation", p.uid);
  const std::string status = s.text(3);
  const auto parsed = preparation_status_from_string(status);
  if (!parsed) throw_bad_row(file, "preparation", p.uid, "unknown status \"" + status + "\"");
  p.status = *parsed;
  p.error = s.text(4);
  p.executor = s.text(5);
  p.result_json = s.text(6);
  p.restore_json = s.text(7);
  p.created_at = from_ms(s.int64(8));
  p.updated_at = from_ms(s.int64(9));
  return p;
}

// ---- audit ----

AuditEntry read_audit(const Statement &s) {
  AuditEntry a;
  a.id = s.int64(0);
  a.time = from_ms(s.int64(1));
  a.actor = s.text(2);
  a.remote = s.text(3);
  a.action = s.text(4);
  a.subject = s.text(5);
  a.params_json = s.text(6);
  a.outcome = s.text(7);
  return a;
}

// ---- opening ----

std::filesystem::path absolute_path(const std::filesystem::path &file) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(file, ec);
  if (ec)
    throw Error(ErrorCode::Unavailable,
                fmt::format("cannot open database {}: {}", file.string(), ec.message()));
  return absolute;
}

// SQLite would only say "unable to open database file"; name the cause.
void check_directory(const std::filesystem::path &file) {
  const std::filesystem::path dir = file.parent_path();
  std::error_code ec;
  const auto status = std::filesystem::status(dir, ec);
  if (status.type() == std::filesystem::file_type::not_found)
    throw Error(ErrorCode::Unavailable,
                fmt::format("cannot open database {}: directory {} does not exist", file.string(),
                            dir.string()));
  if (!ec && status.type() != std::filesystem::file_type::directory)
    throw Error(
        ErrorCode::Unavailable,
        fmt::format("cannot open database {}: {} is not a directory", file.string(), dir.string()));
  // Other failures (e.g. no search permission) are left for SQLite to report.
}

// SQLite reports a new file in a read-only directory as "No such file"
// (its read-only retry is what fails last); say what is really wrong.
void check_can_create(const std::filesystem::path &file) {
  std::error_code ec;
  if (std::filesystem::exists(file, ec) || ec) return;
  const std::filesystem::path dir = file.parent_path();
  if (::faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) != 0)
    throw Error(ErrorCode::Unavailable,
                fmt::format("cannot write {}: cannot create it in directory {}: {}", file.string(),
                            dir.string(), std::strerror(errno)));
}

std::int64_t user_version(Connection &c) {
  return c.query_int64("PRAGMA user_version");
}

void refuse_newer(const Connection &c, std::int64_t version) {
  const int latest = store_schema::latest_version();
  if (version > latest)
    throw Error(
        ErrorCode::Unavailable,
        fmt::format("database {}: schema version {} is newer than this bladed supports ({})",
                    c.file().string(), version, latest));
}

void check_writable(const Connection &c) {
  // SQLite falls back to read-only without an error when the OS refuses
  // write access; a daemon that cannot persist must not start.
  if (c.read_only())
    throw Error(
        ErrorCode::Unavailable,
        fmt::format("cannot write {}: the file is read-only to this process", c.file().string()));
}

void enable_wal(Connection &c) {
  // WAL lets readers run alongside the writer. The pragma answers with the
  // mode in effect, which stays the old one when WAL is impossible.
  const std::string mode = c.query_text("PRAGMA journal_mode=WAL");
  if (mode != "wal")
    throw Error(ErrorCode::Unavailable,
                fmt::format("cannot write {}: cannot switch to WAL journal mode (still \"{}\")",
                            c.file().string(), mode));
  // NORMAL is safe in WAL mode: a crash of bladed loses nothing committed;
  // a power cut may lose the last commits but never corrupts the file.
  c.prepare("PRAGMA synchronous=NORMAL")->run();
  c.prepare("PRAGMA foreign_keys=ON")->run();
  c.query_text(fmt::format("PRAGMA journal_size_limit={}", kWalSizeLimit));
}

void check_integrity(Connection &c) {
  // quick_check skips the costly index-content comparison but still reads
  // every page, so a damaged file fails here at start, not mid-experiment.
  std::string answer = c.query_text("PRAGMA quick_check(1)");
  if (answer == "ok") return;
  std::replace(answer.begin(), answer.end(), '\n', ' ');  // one log line, one JSON string
  throw Error(ErrorCode::Unavailable,
              fmt::format("database {} is corrupt: quick_check: {}", c.file().string(), answer));
}

// Applies the missing migrations, each in its own transaction, and returns
// the resulting version. The final BEGIN IMMEDIATE doubles as a write
// probe: a lock held by another process shows now, not at the first write.
int migrate(Connection &c) {
  const auto migrations = store_schema::migrations();
  for (;;) {
    Transaction transaction(c);
    // Read again under the write lock: another bladed opening the same new
    // file may have migrated it meanwhile.
    const std::int64_t version = user_version(c);
    refuse_newer(c, version);
    if (version == store_schema::latest_version()) {
      transaction.commit();
      return static_cast<int>(version);
    }
    c.exec(migrations[static_cast<std::size_t>(version)]);
    // An integer of our own, not user input; PRAGMAs take no parameters.
    c.exec(fmt::format("PRAGMA user_version = {}", version + 1));
    transaction.commit();
    log::info("database migrated",
              {{"file", c.file().string()}, {"schema_version", std::to_string(version + 1)}});
  }
}

std::unique_ptr<Connection> open_writer(const std::filesystem::path &file,
                                        std::chrono::milliseconds busy_timeout) {
  check_directory(file);
  check_can_create(file);
  auto writer = std::make_unique<Connection>(file, busy_timeout);
  check_writable(*writer);
  // Before the first access to the file, so that the WAL index lives in
  // this process's heap (no -shm file, no lock call per transaction) and the
  // lock taken now is held until close: a second bladed on the file fails
  // here, naming the lock, instead of interleaving its writes.
  writer->query_text("PRAGMA locking_mode=EXCLUSIVE");
  // Before anything writes (WAL switch, migrations), so a newer bladed's
  // file is left exactly as it was.
  refuse_newer(*writer, user_version(*writer));
  enable_wal(*writer);
  check_integrity(*writer);
  return writer;
}

}  // namespace

Store::Impl::Impl(const std::filesystem::path &given, std::chrono::milliseconds busy_timeout)
    : file(given),
      db(open_writer(absolute_path(given), busy_timeout)),
      version(migrate(*db)) {
  counts.load(*db);
  upkeep = std::make_unique<StoreUpkeep>(*this);
}

Store::Impl::~Impl() {
  upkeep.reset();
  // The lines still queued go in with the last commit; closing the
  // connection then checkpoints the WAL and removes it.
  if (backlog.empty()) return;
  try {
    write([](Connection &) {});
  } catch (const Error &e) {
    log::error("audit write failed at close", {{"error", e.what()}});
  }
}

void Store::Impl::sync_wal_file() {
  const std::filesystem::path &wal = db->wal_file();  // fixed at open: no mutex needed
  const auto fail = [&](std::string_view doing) {
    throw Error(ErrorCode::Unavailable, fmt::format("database {}: {} {}: {}", db->file().string(),
                                                    doing, wal.string(), std::strerror(errno)));
  };
  int fd = -1;
  {
    std::lock_guard lock(wal_mutex);
    if (!wal_fd.valid()) {
      detail::UniqueFd opened(::open(wal.c_str(), O_RDONLY | O_CLOEXEC));
      if (!opened.valid()) fail("cannot open the WAL");
      // SQLite fsyncs a new log's directory at the log's first sync, which
      // in NORMAL mode is the first checkpoint's; a commit synced here
      // before that needs the name on disk as much as the data. Best effort
      // as in SQLite: a directory that cannot be synced leaves the data
      // synced still.
      const std::filesystem::path dir = wal.parent_path();
      detail::UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!dir_fd.valid() || ::fsync(dir_fd.get()) != 0)
        log::warn("syncing the WAL's directory failed",
                  {{"directory", dir.string()}, {"error", std::strerror(errno)}});
      wal_fd = std::move(opened);
    }
    fd = wal_fd.get();
  }
  // Outside wal_mutex: a save_restore_record need not wait for the
  // upkeep's larger sync to finish before its own starts (the kernel
  // writes each dirty page once either way).
  if (::fdatasync(fd) != 0) fail("cannot sync the WAL");
}

Store::Impl::Write::Write(Impl &impl) : impl_(impl), transaction_(*impl.db) {}

Store::Impl::Write::~Write() {
  if (!committed_) impl_.counts.rollback();
}

void Store::Impl::Write::commit() {
  std::vector<AuditEntry> lines = impl_.backlog.take();
  try {
    for (const AuditEntry &line : lines)
      insert_audit(*impl_.db, line);
    transaction_.commit();
  } catch (...) {
    impl_.backlog.give_back(std::move(lines));
    throw;
  }
  committed_ = true;
  impl_.counts.commit();
  impl_.backlog.finished(lines.size());
  if (!impl_.upkeep) return;
  const int frames = impl_.db->wal_frames();
  if (frames >= StoreUpkeep::kWriterCheckpointFrames) {
    // Committed already: a failed checkpoint leaves the work to upkeep.
    try {
      impl_.db->checkpoint(SQLITE_CHECKPOINT_PASSIVE);
    } catch (const Error &e) {
      log::warn("WAL checkpoint failed", {{"error", e.what()}});
    }
  }
  if (frames >= StoreUpkeep::kCheckpointFrames)
    impl_.upkeep->hurry();
  else
    impl_.upkeep->poke();
}

Store::Store(const std::filesystem::path &file, std::chrono::milliseconds busy_timeout)
    : impl_(std::make_unique<Impl>(file, busy_timeout)) {}

Store::~Store() = default;

const std::filesystem::path &Store::file() const {
  return impl_->file;
}

void Store::release_memory() {
  impl_->read([](Connection &c) { c.release_memory(); });
}

int Store::schema_version() const {
  return impl_->version;
}

void Store::insert_experiment(const Experiment &e, const AuditEntry *audit) {
  const std::string flags_json = flags_to_json(e.flags);  // outside the lock; may throw
  impl_->write([&](Connection &c) {
    auto insert = c.prepare(kInsertExperiment);
    bind_identity(*insert, e);
    bind_state(*insert, e, flags_json);
    try {
      insert->run();
    } catch (const Error &error) {
      if (error.code() != ErrorCode::AlreadyExists) throw;
      throw Error(ErrorCode::AlreadyExists, fmt::format("experiment {} already exists", e.uid));
    }
    if (audit) insert_audit(c, *audit);
    impl_->counts.change(e.uid, std::nullopt, key_of(e));
  });
}

void Store::save_restore_record(const Experiment &e, const std::string &restore_json,
                                SystemTime now) {
  Experiment created = e;
  created.status = ExperimentStatus::Created;
  created.restore_json = restore_json;
  created.updated_at = now;
  const std::string flags_json = flags_to_json(created.flags);
  impl_->write([&](Connection &c) {
    // One statement either way: the first record of a create stored
    // nothing before its plugin call inserts the row, a later one (or the
    // first of a create whose row was inserted up front) updates it. A row
    // past created is left alone: the record would describe a step its
    // destroy no longer expects.
    // The insert, or the update of a row still created (no row changes
    // for one past created).
    static const std::string sql = fmt::format(
        "{} ON CONFLICT (uid) DO UPDATE SET restore_json = excluded.restore_json, "
        "updated_at_ms = excluded.updated_at_ms WHERE status = '{}'",
        kInsertExperiment, to_string(ExperimentStatus::Created));
    auto upsert = c.prepare(sql);
    bind_identity(*upsert, created);
    bind_state(*upsert, created, flags_json);
    upsert->run();
    if (c.changes() == 0)
      throw Error(ErrorCode::FailedPrecondition,
                  fmt::format("experiment {} is not being created", e.uid));
    // A created row is always live; none there means this inserted it.
    if (!impl_->counts.live(e.uid)) impl_->counts.change(e.uid, std::nullopt, key_of(created));
  });
  // The step this record covers runs as soon as this returns, so the
  // commit is fsynced (as synchronous=FULL would) rather than left to the
  // next checkpoint: the record then survives a power cut as well as a
  // crash of bladed. Outside the store's mutex (see sync_wal_file): a
  // later commit only adds to the log, so syncing after the mutex was let
  // go still covers this one, and other requests do not wait on the disk.
  impl_->sync_wal_file();
}

void Store::update_experiment(const Experiment &e, const AuditEntry *audit) {
  const std::string flags_json = flags_to_json(e.flags);
  impl_->write([&](Connection &c) {
    // The row's key before the change: from memory for a row still live
    // (every one the service updates), from the row for a terminal one.
    std::optional<ExperimentKey> before;
    if (const ExperimentKey *live = impl_->counts.live(e.uid)) {
      before = *live;
    } else {
      auto select =
          c.prepare("SELECT status, scope, target, action FROM experiments WHERE uid = ?1");
      select->bind(1, e.uid);
      if (!select->step())
        throw Error(ErrorCode::NotFound, fmt::format("experiment {} not found", e.uid));
      const std::string status = select->text(0);
      const auto parsed = experiment_status_from_string(status);
      if (!parsed) throw_bad_row(c.file(), "experiment", e.uid, "unknown status \"" + status + "\"");
      before = ExperimentKey{*parsed, select->text(1), select->text(2), select->text(3)};
    }
    auto update = c.prepare(kUpdateExperimentState);
    bind_state(*update, e, flags_json);
    update->run();
    if (c.changes() == 0)
      throw Error(ErrorCode::NotFound, fmt::format("experiment {} not found", e.uid));
    if (audit) insert_audit(c, *audit);
    ExperimentKey after = *before;
    after.status = e.status;
    impl_->counts.change(e.uid, std::move(before), std::move(after));
  });
}

void Store::forget_refused_experiment(const std::string &uid, const AuditEntry &audit) {
  impl_->write([&](Connection &c) {
    // Only a row no step was taken for: one with a record written ahead
    // names something destroy must undo, so it is never removed here.
    auto remove = c.prepare(
        "DELETE FROM experiments WHERE uid = ?1 AND status = ?2 "
        "AND (restore_json IS NULL OR restore_json = '') RETURNING scope, target, action");
    remove->bind(1, uid);
    remove->bind(2, std::string(to_string(ExperimentStatus::Created)));
    if (!remove->step())
      throw Error(ErrorCode::NotFound,
                  fmt::format("experiment {} is not a created row without a restore record", uid));
    impl_->counts.change(uid,
                         ExperimentKey{ExperimentStatus::Created, remove->text(0),
                                       remove->text(1), remove->text(2)},
                         std::nullopt);
    insert_audit(c, audit);
  });
}

std::optional<Experiment> Store::get_experiment(const std::string &uid) const {
  return impl_->read([&](Connection &c) -> std::optional<Experiment> {
    static const std::string sql =
        fmt::format("SELECT {} FROM experiments WHERE uid = ?", kExperimentColumns);
    auto select = c.prepare(sql);
    select->bind(1, uid);
    if (!select->step()) return std::nullopt;
    return read_experiment(*select, c.file());
  });
}

Page<Experiment> Store::list_experiments(const ExperimentFilter &filter) const {
  PageQuery query{.table = "experiments",
                  .index = {},
                  .columns = kExperimentColumns,
                  .where = {},
                  .ascending = filter.ascending,
                  .limit = filter.limit,
                  .offset = filter.offset,
                  .after = &filter.after};
  if (filter.status) query.where.equals("status", std::string(to_string(*filter.status)));
  query.where.equals("target", filter.target);
  query.where.equals("action", filter.action);
  query.where.equals("scope", filter.scope);
  return impl_->read([&](Connection &c) {
    const ExperimentCounts &counts = impl_->counts;
    const std::int64_t total =
        counts.matching(filter.status, filter.scope, filter.target, filter.action);
    // Of several filters, the one fewest rows match walks its index (in
    // list order, so LIMIT ends the scan) and the others are checked on
    // the way: SQLite, without statistics of each value, would pick any.
    // The counts say which exactly. Each count walks the in-memory counts
    // under the mutex, so only the filters given are counted, and only
    // when there is a choice: one filter has one index to walk, which
    // SQLite finds by itself.
    if (filters_given(filter) >= 2) {
      const std::optional<std::string> none;
      std::int64_t fewest = INT64_MAX;
      const auto consider = [&](std::string_view index, std::int64_t rows) {
        if (rows < fewest) {
          fewest = rows;
          query.index = index;
        }
      };
      if (filter.status)
        consider("experiments_by_status", counts.matching(filter.status, none, none, none));
      if (filter.target)
        consider("experiments_by_target", counts.matching(std::nullopt, none, filter.target, none));
      if (filter.action)
        consider("experiments_by_action", counts.matching(std::nullopt, none, none, filter.action));
      if (filter.scope)
        consider("experiments_by_scope", counts.matching(std::nullopt, filter.scope, none, none));
    }
    return read_page<Experiment>(c, query, total,
                                 [&](const Statement &s) { return read_experiment(s, c.file()); });
  });
}

std::vector<Experiment> Store::experiments_needing_recovery(SystemTime deadline_before) const {
  // Equivalent to "active, or not terminal with a passed deadline": a
  // running or destroying row is already in the first term.
  return impl_->read([&](Connection &c) {
    static const std::string sql = fmt::format(
        "SELECT {} FROM experiments "
        "WHERE status IN (?1, ?2) OR (status = ?3 AND deadline_ms <= ?4) "
        "ORDER BY created_at_ms, id",
        kExperimentColumns);
    auto select = c.prepare(sql);
    select->bind(1, to_string(ExperimentStatus::Running));
    select->bind(2, to_string(ExperimentStatus::Destroying));
    select->bind(3, to_string(ExperimentStatus::Created));
    select->bind(4, to_ms(deadline_before));
    return read_experiments(*select, c.file());
  });
}

std::vector<Experiment> Store::active_experiments() const {
  return impl_->read([&](Connection &c) {
    static const std::string sql = fmt::format(
        "SELECT {} FROM experiments WHERE status IN (?1, ?2) ORDER BY created_at_ms, id",
        kExperimentColumns);
    auto select = c.prepare(sql);
    select->bind(1, to_string(ExperimentStatus::Running));
    select->bind(2, to_string(ExperimentStatus::Destroying));
    return read_experiments(*select, c.file());
  });
}

std::vector<Experiment> Store::created_experiments() const {
  return impl_->read([&](Connection &c) {
    static const std::string sql = fmt::format(
        "SELECT {} FROM experiments WHERE status = ?1 ORDER BY created_at_ms, id",
        kExperimentColumns);
    auto select = c.prepare(sql);
    select->bind(1, to_string(ExperimentStatus::Created));
    return read_experiments(*select, c.file());
  });
}

std::map<ExperimentStatus, std::int64_t> Store::count_experiments_by_status() const {
  return impl_->read([&](Connection &) { return impl_->counts.by_status(); });
}

std::int64_t Store::count_quarantined_experiments() const {
  return impl_->read([&](Connection &c) {
    // Quarantined rows are few and always destroying: the status index
    // narrows the scan to those.
    auto count = c.prepare("SELECT count(*) FROM experiments WHERE status = ?1 AND quarantined");
    count->bind(1, to_string(ExperimentStatus::Destroying));
    count->step();
    return count->int64(0);
  });
}

std::int64_t Store::count_active_experiments() const {
  return impl_->read([&](Connection &) {
    const auto none = std::optional<std::string>();
    return impl_->counts.matching(ExperimentStatus::Running, none, none, none) +
           impl_->counts.matching(ExperimentStatus::Destroying, none, none, none);
  });
}

void Store::insert_preparation(const Preparation &p) {
  const std::string flags_json = flags_to_json(p.flags);
  impl_->write([&](Connection &c) {
    auto insert = c.prepare(kInsertPreparation);
    bind_preparation(*insert, p, flags_json);
    try {
      insert->run();
    } catch (const Error &error) {
      if (error.code() != ErrorCode::AlreadyExists) throw;
      throw Error(ErrorCode::AlreadyExists, fmt::format("preparation {} already exists", p.uid));
    }
  });
}

// Preparations are few and rarely change, so one plain UPDATE is enough.
void Store::update_preparation(const Preparation &p) {
  const std::string flags_json = flags_to_json(p.flags);
  impl_->write([&](Connection &c) {
    auto update = c.prepare(kUpdatePreparation);
    bind_preparation(*update, p, flags_json);
    update->run();
    if (c.changes() == 0)
      throw Error(ErrorCode::NotFound, fmt::format("preparation {} not found", p.uid));
  });
}

std::optional<Preparation> Store::get_preparation(const std::string &uid) const {
  return impl_->read([&](Connection &c) -> std::optional<Preparation> {
    static const std::string sql =
        fmt::format("SELECT {} FROM preparations WHERE uid = ?", kPreparationColumns);
    auto select = c.prepare(sql);
    select->bind(1, uid);
    if (!select->step()) return std::nullopt;
    return read_preparation(*select, c.file());
  });
}

Page<Preparation> Store::list_preparations(const PreparationFilter &filter) const {
  PageQuery query{.table = "preparations",
                  .index = {},
                  .columns = kPreparationColumns,
                  .where = {},
                  .ascending = filter.ascending,
                  .limit = filter.limit,
                  .offset = filter.offset,
                  .after = &filter.after};
  if (filter.status) query.where.equals("status", std::string(to_string(*filter.status)));
  query.where.equals("type", filter.type);
  return impl_->read([&](Connection &c) {
    // Preparations are few: counted by the query.
    return read_page<Preparation>(
        c, query, std::nullopt, [&](const Statement &s) { return read_preparation(s, c.file()); });
  });
}

void Store::queue_audit(AuditEntry entry) {
  if (impl_->backlog.add(std::move(entry))) impl_->upkeep->poke();
}

void Store::flush_audit() {
  // Every line queued before now is committed, or pending, or taken by a
  // write that holds the mutex; this write waits for that one and carries
  // whatever it gave back or left.
  if (impl_->backlog.done() >= impl_->backlog.added()) return;
  impl_->write([](Connection &) {});
}

StoreStats Store::stats() const {
  const Connection &c = *impl_->db;
  return {.transactions = c.transactions(),
          .statements = c.statements(),
          .rows_written = c.rows_written()};
}

std::int64_t Store::append_audit(const AuditEntry &entry) {
  return impl_->write([&](Connection &c) { return insert_audit(c, entry); });
}

std::vector<AuditEntry> Store::list_audit(std::int64_t limit, std::int64_t offset) const {
  validate_page(limit, offset);
  return impl_->read([&](Connection &c) {
    auto select = c.prepare(
        "SELECT id, time_ms, actor, remote, action, subject, params_json, outcome FROM audit "
        "ORDER BY id DESC LIMIT ?1 OFFSET ?2");
    select->bind(1, limit);
    select->bind(2, offset);
    std::vector<AuditEntry> out;
    while (select->step())
      out.push_back(read_audit(*select));
    return out;
  });
}

}  // namespace blade
