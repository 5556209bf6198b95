// The SQLite store against real files in a temp dir: round trips, filters
// and paging, recovery selection, migrations, and the start-up failures an
// operator must see clearly (missing dir, corrupt, read-only, locked).
#include <fcntl.h>
#include <grp.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "../../core/src/store/audit_backlog.hpp"
#include "../../core/src/store/store_schema.hpp"
#include "../support/scratch_fs.hpp"
#include "../support/temp_dir.hpp"
#include "blade/core/model/error.hpp"
#include "blade/core/store/store.hpp"

using namespace std::chrono_literals;
using blade::AuditEntry;
using blade::Error;
using blade::ErrorCode;
using blade::Experiment;
using blade::ExperimentFilter;
using blade::ExperimentStatus;
using blade::Preparation;
using blade::PreparationFilter;
using blade::PreparationStatus;
using blade::Store;
using blade::SystemTime;
using blade::test::TempDir;

namespace {

constexpr std::int64_t kBaseMs = 1763764402123;  // 2025-11-21T22:33:22.123Z

SystemTime at_ms(std::int64_t ms) {
  return SystemTime(std::chrono::milliseconds(ms));
}

std::int64_t ms_of(SystemTime t) {
  return std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::optional<std::int64_t> ms_of(const std::optional<SystemTime> &t) {
  if (!t) return std::nullopt;
  return ms_of(*t);
}

std::string uid_of(int n) {
  return fmt::format("{:016x}", n);
}

// Every field set, times with sub-millisecond parts that the store drops.
Experiment full_experiment(const std::string &uid) {
  Experiment e;
  e.uid = uid;
  e.scope = "docker";
  e.target = "network";
  e.action = "delay";
  e.flags = {{"interface", "eth0"},
             {"message", "héllo \"quoted\" 'single' \\ back\nslash ✓ 日本語 🙂"},
             {"empty", ""},
             {"nul", std::string("a\0b", 3)},
             {"ключ with spaces", "значение"}};
  e.status = ExperimentStatus::Destroying;
  e.error = "destroy failed: tc said \"no\"";
  e.executor = "inprocess:network";
  e.result_json = R"({"qdisc":"netem","handle":"1:"})";
  e.restore_json = R"({"dev":"eth0","parent":"root"})";
  e.destroy_result_json = R"({"restored":false,"left_alone":"the root is tbf 7: now"})";
  e.timeout_s = 120;
  e.deadline = at_ms(kBaseMs + 120000) + 999us;
  e.callback = "http://127.0.0.1:8080/hook?a=1&b='2'";
  e.created_at = at_ms(kBaseMs) + 456789ns;
  e.started_at = at_ms(kBaseMs + 15) + 1ns;
  e.finished_at = at_ms(kBaseMs + 130000);
  e.updated_at = at_ms(kBaseMs + 130001) + 999999ns;
  return e;
}

// Only the required fields; every optional one absent.
Experiment bare_experiment(const std::string &uid) {
  Experiment e;
  e.uid = uid;
  e.target = "cpu";
  e.action = "fullload";
  e.created_at = at_ms(kBaseMs);
  e.updated_at = at_ms(kBaseMs);
  return e;
}

void check_same(const Experiment &got, const Experiment &want) {
  CHECK(got.uid == want.uid);
  CHECK(got.scope == want.scope);
  CHECK(got.target == want.target);
  CHECK(got.action == want.action);
  CHECK(got.flags == want.flags);
  CHECK(got.status == want.status);
  CHECK(got.error == want.error);
  CHECK(got.executor == want.executor);
  CHECK(got.result_json == want.result_json);
  CHECK(got.restore_json == want.restore_json);
  CHECK(got.destroy_result_json == want.destroy_result_json);
  CHECK(got.timeout_s == want.timeout_s);
  CHECK(ms_of(got.deadline) == ms_of(want.deadline));
  CHECK(got.callback == want.callback);
  CHECK(ms_of(got.created_at) == ms_of(want.created_at));
  CHECK(ms_of(got.started_at) == ms_of(want.started_at));
  CHECK(ms_of(got.finished_at) == ms_of(want.finished_at));
  CHECK(ms_of(got.updated_at) == ms_of(want.updated_at));
}

void check_same(const Preparation &got, const Preparation &want) {
  CHECK(got.uid == want.uid);
  CHECK(got.type == want.type);
  CHECK(got.flags == want.flags);
  CHECK(got.status == want.status);
  CHECK(got.error == want.error);
  CHECK(got.executor == want.executor);
  CHECK(got.result_json == want.result_json);
  CHECK(got.restore_json == want.restore_json);
  CHECK(ms_of(got.created_at) == ms_of(want.created_at));
  CHECK(ms_of(got.updated_at) == ms_of(want.updated_at));
}

// The blade::Error `f` throws; fails the test if it throws none.
std::optional<Error> error_of(const std::function<void()> &f) {
  try {
    f();
  } catch (const Error &e) {
    return e;
  }
  return std::nullopt;
}

bool contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

std::vector<std::string> uids(const std::vector<Experiment> &items) {
  std::vector<std::string> out;
  for (const Experiment &e : items)
    out.push_back(e.uid);
  return out;
}

// A second connection made with the plain C API, standing in for another
// process (or another tool) that has the same file open.
class RawDb {
 public:
  explicit RawDb(const std::filesystem::path &file) {
    REQUIRE(sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                            nullptr) == SQLITE_OK);
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb &) = delete;
  RawDb &operator=(const RawDb &) = delete;

  int exec(const std::string &sql) {
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }
  std::string query_text(const std::string &sql) {
    sqlite3_stmt *stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char *text = sqlite3_column_text(stmt, 0);
      if (text) out = reinterpret_cast<const char *>(text);
    }
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  sqlite3 *db_ = nullptr;
};

void write_file(const std::filesystem::path &file, const std::string &bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << bytes;
  REQUIRE(out.good());
}

// ---- opening without write permission ----

struct OpenOutcome {
  std::string code;  // "OK" when the store opened
  std::string message;
};

OpenOutcome try_open(const std::filesystem::path &file) {
  try {
    Store store(file, 200ms);
    return {"OK", ""};
  } catch (const Error &e) {
    return {std::string(blade::to_string(e.code())), e.what()};
  } catch (const std::exception &e) {
    return {"EXCEPTION", e.what()};
  }
}

bool running_as_root() {
  return ::geteuid() == 0;
}

constexpr uid_t kNobody = 65534;

// Root ignores file modes, so as root the open runs in a forked child that
// has become nobody (uid/gid 65534) and reports back through a pipe. The
// files involved stay root-owned, exactly as an unprivileged daemon would
// meet a root-owned database.
OpenOutcome try_open_as_nobody(const std::filesystem::path &file) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::fflush(nullptr);  // or the child could print our buffered output again
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string report;
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) {
      report = std::string("SETUID_FAILED\n") + std::strerror(errno);
    } else {
      const OpenOutcome outcome = try_open(file);
      report = outcome.code + "\n" + outcome.message;
    }
    std::size_t sent = 0;
    while (sent < report.size()) {
      const ssize_t n = ::write(fds[1], report.data() + sent, report.size() - sent);
      if (n <= 0) break;
      sent += static_cast<std::size_t>(n);
    }
    ::_exit(0);  // no atexit handlers, no second doctest report
  }
  ::close(fds[1]);
  std::string report;
  char buffer[4096];
  ssize_t n = 0;
  while ((n = ::read(fds[0], buffer, sizeof buffer)) > 0)
    report.append(buffer, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  const std::size_t newline = report.find('\n');
  REQUIRE_MESSAGE(newline != std::string::npos, "child reported: ", report);
  OpenOutcome outcome{report.substr(0, newline), report.substr(newline + 1)};
  REQUIRE_MESSAGE(outcome.code != "SETUID_FAILED", "cannot drop root: ", outcome.message);
  return outcome;
}

std::filesystem::path make_dir(const std::filesystem::path &dir, mode_t mode) {
  std::filesystem::create_directory(dir);
  REQUIRE(::chmod(dir.c_str(), mode) == 0);
  return dir;
}

// `reason` pins the cause, so a case cannot pass for some other failure.
void check_cannot_write(const OpenOutcome &outcome, const std::filesystem::path &file,
                        const std::string &reason) {
  INFO("message: ", outcome.message);
  CHECK(outcome.code == "UNAVAILABLE");
  CHECK(contains(outcome.message, "cannot write " + file.string()));
  CHECK(contains(outcome.message, reason));
}

// ---- a data set for the list tests ----

const ExperimentStatus kStatuses[] = {ExperimentStatus::Created, ExperimentStatus::Running,
                                      ExperimentStatus::Destroying, ExperimentStatus::Destroyed,
                                      ExperimentStatus::Failed};

// 30 experiments over 5 statuses, 3 targets, 2 actions and 2 scopes;
// created_at repeats in pairs so ties must be broken (by insertion order).
std::vector<Experiment> list_fixture() {
  const char *targets[] = {"cpu", "mem", "network"};
  const char *actions[] = {"fullload", "delay"};
  std::vector<Experiment> out;
  for (int i = 0; i < 30; ++i) {
    Experiment e = bare_experiment(uid_of(1000 + i));
    e.status = kStatuses[i % 5];
    e.target = targets[i % 3];
    e.action = actions[(i / 3) % 2];
    e.scope = i % 4 == 0 ? "docker" : "host";
    e.created_at = at_ms(kBaseMs + (i / 2) * 1000);
    out.push_back(e);
  }
  return out;
}

// What list_experiments must answer, computed the slow obvious way.
blade::Page<Experiment> reference_list(const std::vector<Experiment> &all,
                                       const ExperimentFilter &f) {
  std::vector<Experiment> match;
  for (const Experiment &e : all) {
    if (f.status && e.status != *f.status) continue;
    if (f.target && e.target != *f.target) continue;
    if (f.action && e.action != *f.action) continue;
    if (f.scope && e.scope != *f.scope) continue;
    match.push_back(e);
  }
  std::sort(match.begin(), match.end(), [&](const Experiment &a, const Experiment &b) {
    const auto ka = std::make_pair(ms_of(a.created_at), a.uid);
    const auto kb = std::make_pair(ms_of(b.created_at), b.uid);
    return f.ascending ? ka < kb : kb < ka;
  });
  blade::Page<Experiment> page;
  page.total = static_cast<std::int64_t>(match.size());
  for (std::int64_t i = f.offset; i < page.total && i < f.offset + f.limit; ++i)
    page.items.push_back(match[static_cast<std::size_t>(i)]);
  return page;
}

}  // namespace

TEST_CASE("store: an experiment with every field set round-trips to the millisecond") {
  TempDir dir("blade-store");
  Store store(dir / "blade.db");
  const Experiment e = full_experiment(uid_of(1));
  store.insert_experiment(e);
  const auto got = store.get_experiment(e.uid);
  REQUIRE(got.has_value());
  check_same(*got, e);
  // Sub-millisecond parts are dropped, never rounded up.
  CHECK(ms_of(got->created_at) == kBaseMs);
  CHECK(got->created_at == at_ms(kBaseMs));
  CHECK(got->deadline == at_ms(kBaseMs + 120000));
}

TEST_CASE("store: absent optional fields come back absent") {
  TempDir dir("blade-store");
  Store store(dir / "blade.db");
  const Experiment e = bare_experiment(uid_of(2));
  store.insert_experiment(e);
  const auto got = store.get_experiment(e.uid);
  REQUIRE(got.has_value());
  check_same(*got, e);
  CHECK_FALSE(got->timeout_s.has_value());
  CHECK_FALSE(got->deadline.has_value());
  CHECK_FALSE(got->started_at.has_value());
  CHECK_FALSE(got->finished_at.has_value());
  CHECK(got->flags.empty());
  CHECK(got->restore_json.empty());
  CHECK(got->scope == "host");
}

TEST_CASE("store: update replaces every field but the identity and is seen by the next read") {
  TempDir dir("blade-store");
  Store store(dir / "blade.db");
  Experiment e = full_experiment(uid_of(3));
  store.insert_experiment(e);
  REQUIRE(store.get_experiment(e.uid).has_value());  // a reader has read the old row

  Experiment changed = bare_experiment(e.uid);
  changed.flags = {{"cpu-percent", "60"}};
  changed.status = ExperimentStatus::Failed;
  changed.error = "plugin refused";
  changed.executor = "external:chaos_os";
  changed.result_json = "{}";
  changed.restore_json = "";
  changed.callback = "";
  changed.updated_at = at_ms(kBaseMs + 999999);
  // Fixed at creation: what an update says of them is not written.
  changed.scope = "host";
  changed.target = "cpu";
  changed.action = "fullload";
  changed.created_at = at_ms(kBaseMs - 5);
  store.update_experiment(changed);

  const auto got = store.get_experiment(e.uid);
  REQUIRE(got.has_value());
  Experiment want = changed;
  want.scope = e.scope;
  want.target = e.target;
  want.action = e.action;
  want.created_at = e.created_at;
  check_same(*got, want);
  CHECK_FALSE(got->deadline.has_value());  // set before, cleared now
}

TEST_CASE("store: a missing uid is nullopt; a duplicate or a missing update is an error") {
  TempDir dir("blade-store");
  Store store(dir / "blade.db");
  CHECK_FALSE(store.get_experiment(uid_of(4)).has_value());

  const Experiment e = full_experiment(uid_of(4));
  store.insert_experiment(e);
  Experiment again = bare_experiment(e.uid);
  const auto dup = error_of([&] { store.insert_experiment(again); });
  REQUIRE(dup.has_value());
  CHECK(dup->code() == ErrorCode::AlreadyExists);
  CHECK(contains(dup->what(), e.uid));
  check_same(*store.get_experiment(e.uid), e);  // the first row is untouched

  const auto missing = error_of([&] { store.update_experiment(bare_experiment(uid_of(5))); });
  REQUIRE(missing.has_value());
  CHECK(missing->code() == ErrorCode::NotFound);
  CHECK(contains(missing->what(), uid_of(5)));
  CHECK_FALSE(store.get_experiment(uid_of(5)).has_value());
}

TEST_CASE("store: flags that are not valid UTF-8 are refused, not mangled") {
  TempDir dir("blade-store");
  Store store(dir / "blade.db");
  Experiment e = bare_experiment(uid_of(6));
  e.flags = {{"path", "/tmp/\xff\xfe"}};
  const auto error = error_of([&] { store.insert_experiment(e); });
  REQUIRE(error.has_value());
  CHECK(error->code() == ErrorCode::InvalidArgument);
  REQUIRE(error->details().size() == 1);
  CHECK(error->details()[0].field == "flags");
  CHECK_FALSE(store.get_experiment(e.uid).has_value());
}

TEST_CASE("store: list filters, combined filters, order, paging and total") {
  TempDir dir("blade-store");
  Store store(dir / "blade.db");
  // Inserted in uid order, so the tie-break on insertion order (rows with
  // the same created_at) matches the reference's tie-break on uid.
  const std::vector<Experiment> all = list_fixture();
  for (const Experiment &e : all)
    store.insert_experiment(e);

  SUBCASE("hand-checked answers") {
    ExperimentFilter f;
    f.status = ExperimentStatus::Running;
    f.limit = 2;
    auto page = store.list_experiments(f);
    CHECK(page.total == 6);  // i = 1, 6, 11, 16, 21, 26
    CHECK(uids(page.items) == std::vector<std::string>{uid_of(1026), uid_of(1021)});

    f = ExperimentFilter{};
    f.target = "cpu";
    f.scope = "docker";
    f.ascending = true;
    page = store.list_experiments(f);  // i % 3 == 0 and i % 4 == 0
    CHECK(uids(page.items) == std::vector<std::string>{uid_of(1000), uid_of(1012), uid_of(1024)});
    CHECK(page.total == 3);

    f = ExperimentFilter{};
    f.ascending = true;
    f.limit = 3;
    page = store.list_experiments(f);  // 1000 and 1001 share created_at: insertion order decides
    CHECK(uids(page.items) == std::vector<std::string>{uid_of(1000), uid_of(1001), uid_of(1002)});
    CHECK(page.total == 30);

    f.offset = 29;
    page = store.list_experiments(f);
    CHECK(uids(page.items) == std::vector<std::string>{uid_of(1029)});
    f.offset = 30;
    page = store.list_experiments(f);
    CHECK(page.items.empty());
    CHECK(page.total == 30);  // total ignores offset
  }

  SUBCASE("values are bound, never spliced into SQL") {
    ExperimentFilter f;
    f.target = "cpu' OR '1'='1";
    CHECK(store.list_experiments(f).total == 0);
  }

  SUBCASE("every combination matches the reference") {
    std::vector<std::optional<ExperimentStatus>> statuses = {std::nullopt};
    for (ExperimentStatus s : kStatuses)
      statuses.push_back(s);
    const std::vector<std::optional<std::string>> targets = {std::nullopt, "cpu", "nothing"};
    const std::vector<std::optional<std::string>> actions = {std::nullopt, "delay"};
    const std::vector<std::optional<std::string>> scopes = {std::nullopt, "host", "docker"};
    const std::vector<std::pair<std::int64_t, std::int64_t>> pages = {
        {50, 0}, {3, 0}, {3, 2}, {1000, 100}};
    int checked = 0;
    for (const auto &status : statuses)
      for (const auto &target : targets)
        for (const auto &action : actions)
          for (const auto &scope : scopes)
            for (bool ascending : {true, false})
              for (const auto &page_spec : pages) {
                const std::int64_t limit = page_spec.first;
                const std::int64_t offset = page_spec.second;
                ExperimentFilter f;
                f.status = status;
                f.target = target;
                f.action = action;
                f.scope = scope;
                f.ascending = ascending;
                f.limit = limit;
                f.offset = offset;
                const auto want = reference_list(all, f);
                const auto got = store.list_experiments(f);
                INFO("status=", status ? std::string(blade::to_string(*status)) : "-",
                     " target=", target.value_or("-"), " action=", action.value_or("-"),
                     " scope=", scope.value_or("-"), " asc=", ascending, " limit=", limit,
                     " offset=", offset);
                CHECK(got.total == want.total);
                CHECK(uids(got.items) == uids(want.items));
                ++checked;
              }
    CHECK(checked == 6 * 3 * 2 * 3 * 2 * 4);
  }

  SUBCASE("limit and offset are validated") {
    for (std::int64_t bad : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{1001}}) {
      ExperimentFilter f;
      f.limit = bad;
      const auto error = error_of([&] { store.list_experiments(f); });
      REQUIRE(error.has_value());
      CHECK(error->code() == ErrorCode::InvalidArgument);
      REQUIRE(error->details().size() == 1);
      CHECK(error->details()[0].field == "limit");
    }
    ExperimentFilter f;
    f.offset = -1;
    const auto error = error_of([&] { store.list_experiments(f); });
    REQUIRE(error.has_value());
    CHECK(error->code() == ErrorCode::InvalidArgument);
    REQUIRE(error->details().size() == 1);
    CHECK(error->details()[0].field == "offset");

    f = ExperimentFilter{};
    f.limit = 1000;
    CHECK(store.list_experiments(f).items.size() == 30);
  }
}

TEST_CASE("store: recovery picks active rows and non-terminal rows past their deadline") {
  TempDir dir("blade-store");
  Store store(dir / "blade.db");
  const SystemTime now = at_ms(kBaseMs + 60000);
  struct Row {
    int n;
    ExperimentStatus status;
    std::optional<SystemTime> deadline;
    bool recover;
    bool active;
  };
  const Row rows[] = {
      {1, ExperimentStatus::Created, std::nullopt, false, false},
      {2, ExperimentStatus::Created, now - 1ms, true, false},
      {3, ExperimentStatus::Created, now, true, false},  // "at or before"
      {4, ExperimentStatus::Created, now + 1ms, false, false},
      {5, ExperimentStatus::Running, std::nullopt, true, true},
      {6, ExperimentStatus::Running, now + 1h, true, true},
      {7, ExperimentStatus::Destroying, std::nullopt, true, true},
      {8, ExperimentStatus::Destroyed, now - 1h, false, false},
      {9, ExperimentStatus::Failed, now - 1h, false, false},
      {10, ExperimentStatus::Running, now - 1h, true, true},
  };
  std::vector<std::string> want_recover, want_active;
  for (const Row &row : rows) {
    Experiment e = bare_experiment(uid_of(row.n));
    e.status = row.status;
    e.deadline = row.deadline;
    e.created_at = at_ms(kBaseMs + row.n);
    store.insert_experiment(e);
    if (row.recover) want_recover.push_back(e.uid);
    if (row.active) want_active.push_back(e.uid);
  }
  CHECK(uids(store.experiments_needing_recovery(now)) == want_recover);
  CHECK(uids(store.active_experiments()) == want_active);
  CHECK(store.count_active_experiments() == static_cast<std::int64_t>(want_active.size()));

  const auto recovered = store.experiments_needing_recovery(now);
  REQUIRE_FALSE(recovered.empty());
  check_same(recovered.front(), *store.get_experiment(recovered.front().uid));
}

TEST_CASE("store: preparations round-trip, refuse duplicates and list with filters") {
  TempDir dir("blade-store");
  Store store(dir / "blade.db");
  Preparation p;
  p.uid = uid_of(20);
  p.type = "jvm";
  p.flags = {{"pid", "1234"}, {"note", "\"ünïcode\" ✓"}};
  p.status = PreparationStatus::Running;
  p.error = "";
  p.executor = "inprocess:jvm";
  p.result_json = R"({"port":9527})";
  p.restore_json = R"({"agent":"/opt/agent.jar"})";
  p.created_at = at_ms(kBaseMs) + 5us;
  p.updated_at = at_ms(kBaseMs + 10);
  store.insert_preparation(p);
  check_same(*store.get_preparation(p.uid), p);
  CHECK_FALSE(store.get_preparation(uid_of(21)).has_value());

  const auto dup = error_of([&] { store.insert_preparation(p); });
  REQUIRE(dup.has_value());
  CHECK(dup->code() == ErrorCode::AlreadyExists);

  Preparation other = p;
  other.uid = uid_of(21);
  const auto missing = error_of([&] { store.update_preparation(other); });
  REQUIRE(missing.has_value());
  CHECK(missing->code() == ErrorCode::NotFound);

  p.status = PreparationStatus::Revoked;
  p.restore_json = "";
  store.update_preparation(p);
  check_same(*store.get_preparation(p.uid), p);

  for (int i = 0; i < 6; ++i) {
    Preparation q;
    q.uid = uid_of(30 + i);
    q.type = i % 2 ? "jvm" : "python";
    q.status = i < 3 ? PreparationStatus::Created : PreparationStatus::Failed;
    q.created_at = at_ms(kBaseMs + 100 + i);
    q.updated_at = q.created_at;
    store.insert_preparation(q);
  }
  PreparationFilter f;
  f.type = "jvm";
  auto page = store.list_preparations(f);
  CHECK(page.total == 4);  // p and i = 1, 3, 5
  std::vector<std::string> got;
  for (const auto &item : page.items)
    got.push_back(item.uid);
  CHECK(got == std::vector<std::string>{uid_of(35), uid_of(33), uid_of(31), uid_of(20)});

  f.status = PreparationStatus::Failed;
  f.ascending = true;
  f.limit = 1;
  f.offset = 1;
  page = store.list_preparations(f);
  CHECK(page.total == 2);  // i = 3, 5
  REQUIRE(page.items.size() == 1);
  CHECK(page.items[0].uid == uid_of(35));

  f = PreparationFilter{};
  f.limit = 1001;
  const auto bad = error_of([&] { store.list_preparations(f); });
  REQUIRE(bad.has_value());
  CHECK(bad->details().at(0).field == "limit");
}

TEST_CASE("store: queued audit lines from many threads all land, visible after flush") {
  TempDir dir("blade-store");
  {
    Store store(dir / "blade.db");
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 500; ++i) {
          AuditEntry a;
          a.time = at_ms(kBaseMs);
          a.actor = fmt::format("t{}", t);
          a.action = "http.request";
          a.subject = fmt::format("{}", i);
          store.queue_audit(std::move(a));
        }
      });
    }
    for (auto &th : threads)
      th.join();
    store.flush_audit();
    CHECK(store.list_audit(1000).size() == 1000);
    CHECK(store.list_audit(1000, 1000).size() == 1000);
    CHECK(store.list_audit(1000, 2000).empty());
    AuditEntry last;
    last.action = "last";
    store.queue_audit(last);
  }  // closing writes what is still queued
  Store store(dir / "blade.db");
  CHECK(store.list_audit(1).at(0).action == "last");
}

TEST_CASE("store: the audit log assigns rising ids and lists newest first") {
  TempDir dir("blade-store");
  Store store(dir / "blade.db");
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 5; ++i) {
    AuditEntry a;
    a.time = at_ms(kBaseMs - i * 1000) + 7us;  // clock going backwards must not reorder
    a.actor = i == 0 ? "system" : "token:ops";
    a.remote = i == 0 ? "" : "127.0.0.1:4711";
    a.action = "experiment.create";
    a.subject = uid_of(i);
    a.params_json = fmt::format(R"({{"n":{},"q":"\"x\""}})", i);
    a.outcome = i == 3 ? "FAILED_PRECONDITION: no tc" : "ok";
    ids.push_back(store.append_audit(a));
  }
  for (std::size_t i = 1; i < ids.size(); ++i)
    CHECK(ids[i] > ids[i - 1]);

  const auto all = store.list_audit(10);
  REQUIRE(all.size() == 5);
  for (std::size_t i = 0; i < all.size(); ++i)
    CHECK(all[i].id == ids[4 - i]);
  const AuditEntry &oldest = all.back();
  CHECK(ms_of(oldest.time) == kBaseMs);
  CHECK(oldest.actor == "system");
  CHECK(oldest.remote.empty());
  CHECK(oldest.action == "experiment.create");
  CHECK(oldest.subject == uid_of(0));
  CHECK(oldest.params_json == R"({"n":0,"q":"\"x\""})");
  CHECK(oldest.outcome == "ok");
  CHECK(all[1].outcome == "FAILED_PRECONDITION: no tc");

  const auto page = store.list_audit(2, 1);
  REQUIRE(page.size() == 2);
  CHECK(page[0].id == ids[3]);
  CHECK(page[1].id == ids[2]);

  const auto bad = error_of([&] { store.list_audit(0); });
  REQUIRE(bad.has_value());
  CHECK(bad->code() == ErrorCode::InvalidArgument);
}

TEST_CASE("store: migrations run once and a reopen keeps data, version and WAL") {
  TempDir dir("blade-store");
  const auto file = dir / "blade.db";
  const Experiment e = full_experiment(uid_of(40));
  {
    Store store(file);
    CHECK(store.file() == file);
    CHECK(store.schema_version() == blade::store_schema::latest_version());
    store.insert_experiment(e);
  }
  {
    RawDb raw(file);
    CHECK(raw.query_text("PRAGMA user_version") ==
          std::to_string(blade::store_schema::latest_version()));
    CHECK(raw.query_text("PRAGMA journal_mode") == "wal");
    CHECK(raw.query_text("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN "
                         "('experiments', 'preparations', 'audit')") == "3");
  }
  Store store(file);
  CHECK(store.schema_version() == blade::store_schema::latest_version());
  check_same(*store.get_experiment(e.uid), e);
}

TEST_CASE("store: a version 2 database gains the destroy report column; no report is NULL") {
  TempDir dir("blade-store");
  const auto file = dir / "blade.db";
  const Experiment bare = bare_experiment(uid_of(41));
  {
    Store store(file);
    store.insert_experiment(bare);
  }
  {
    RawDb raw(file);
    CHECK(raw.query_text("SELECT destroy_result_json IS NULL FROM experiments") == "1");
    // As a bladed before the column left it.
    REQUIRE(raw.exec("ALTER TABLE experiments DROP COLUMN destroy_result_json") == SQLITE_OK);
    REQUIRE(raw.exec("DROP TABLE policies") == SQLITE_OK);  // migration 4's, later
    REQUIRE(raw.exec("PRAGMA user_version = 2") == SQLITE_OK);
  }
  Store store(file);
  CHECK(store.schema_version() == blade::store_schema::latest_version());
  check_same(*store.get_experiment(bare.uid), bare);
  Experiment reported = *store.get_experiment(bare.uid);
  reported.destroy_result_json = R"({"already_gone":"x"})";
  store.update_experiment(reported);
  CHECK(store.get_experiment(bare.uid)->destroy_result_json == R"({"already_gone":"x"})");
}

TEST_CASE("store: a database from a newer bladed is refused and left untouched") {
  TempDir dir("blade-store");
  const int newer = blade::store_schema::latest_version() + 1;
  const std::string want = fmt::format("schema version {} is newer than this bladed supports ({})",
                                       newer, blade::store_schema::latest_version());

  SUBCASE("a store file") {
    const auto file = dir / "blade.db";
    { Store store(file); }
    {
      RawDb raw(file);
      REQUIRE(raw.exec(fmt::format("PRAGMA user_version = {}", newer)) == SQLITE_OK);
    }
    const auto error = error_of([&] { Store store(file); });
    REQUIRE(error.has_value());
    CHECK(error->code() == ErrorCode::Unavailable);
    CHECK(contains(error->what(), file.string()));
    CHECK(contains(error->what(), want));
    RawDb raw(file);
    CHECK(raw.query_text("PRAGMA user_version") == std::to_string(newer));
  }
  SUBCASE("not even switched to WAL") {
    const auto file = dir / "other.db";
    {
      RawDb raw(file);
      REQUIRE(raw.exec(fmt::format("PRAGMA user_version = {}", newer)) == SQLITE_OK);
    }
    const auto error = error_of([&] { Store store(file); });
    REQUIRE(error.has_value());
    CHECK(contains(error->what(), want));
    RawDb raw(file);
    CHECK(raw.query_text("PRAGMA journal_mode") == "delete");
  }
}

TEST_CASE("store: a missing directory is an error naming the file; it is not created") {
  TempDir dir("blade-store");
  const auto file = dir / "no-such-dir" / "blade.db";
  const auto error = error_of([&] { Store store(file); });
  REQUIRE(error.has_value());
  CHECK(error->code() == ErrorCode::Unavailable);
  CHECK(contains(error->what(), file.string()));
  CHECK(contains(error->what(), "does not exist"));
  CHECK_FALSE(std::filesystem::exists(dir / "no-such-dir"));

  write_file(dir / "plain", "not a directory");
  const auto under_file = dir / "plain" / "blade.db";
  const auto error2 = error_of([&] { Store store(under_file); });
  REQUIRE(error2.has_value());
  CHECK(error2->code() == ErrorCode::Unavailable);
  CHECK(contains(error2->what(), under_file.string()));
  CHECK(contains(error2->what(), "not a directory"));
}

TEST_CASE("store: a corrupt file is a clear error at open") {
  TempDir dir("blade-store");
  const auto file = dir / "blade.db";

  SUBCASE("garbage instead of a database") {
    write_file(file, std::string(8192, '\x5a'));
    const auto error = error_of([&] { Store store(file); });
    REQUIRE(error.has_value());
    CHECK(error->code() == ErrorCode::Unavailable);
    INFO("message: ", std::string(error->what()));
    CHECK(contains(error->what(), file.string()));
    CHECK(contains(error->what(), "corrupt"));
  }
  SUBCASE("a damaged page behind an intact header") {
    {
      Store store(file);
      for (int i = 0; i < 50; ++i)
        store.insert_experiment(full_experiment(uid_of(100 + i)));
    }  // closing checkpoints everything into the main file
    const auto size = std::filesystem::file_size(file);
    REQUIRE(size > 3 * 4096);
    {
      std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(2 * 4096);  // page 3: a b-tree page, not the schema on page 1
      const std::string junk(4096, '\xa5');
      f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
      REQUIRE(f.good());
    }
    const auto error = error_of([&] { Store store(file); });
    REQUIRE(error.has_value());
    CHECK(error->code() == ErrorCode::Unavailable);
    INFO("message: ", std::string(error->what()));
    CHECK(contains(error->what(), file.string()));
    CHECK(contains(error->what(), "corrupt"));
  }
}

// Root bypasses file modes, so "read-only" is tested from an unprivileged
// process: as root, a forked child that has dropped to nobody; otherwise
// this process after chmod.
TEST_CASE("store: a database that cannot be written is refused at open") {
  TempDir dir("blade-store");
  const bool root = running_as_root();
  // mkdtemp makes the dir 0700; nobody must be able to reach the files, or
  // every case would fail for that reason alone.
  REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);

  SUBCASE("the file is read-only") {
    const auto sub = make_dir(dir / "ro-file", 0755);
    const auto file = sub / "blade.db";
    { Store store(file); }
    OpenOutcome outcome;
    if (root) {
      outcome = try_open_as_nobody(file);  // root-owned 0644: read-only for nobody
    } else {
      REQUIRE(::chmod(file.c_str(), 0444) == 0);
      outcome = try_open(file);
    }
    check_cannot_write(outcome, file, "read-only");
  }
  SUBCASE("the directory is read-only and the file does not exist") {
    const auto sub = make_dir(dir / "ro-dir", root ? 0755 : 0555);
    const auto file = sub / "blade.db";
    const OpenOutcome outcome = root ? try_open_as_nobody(file) : try_open(file);
    ::chmod(sub.c_str(), 0755);
    check_cannot_write(outcome, file, "cannot create it in directory " + sub.string());
    CHECK_FALSE(std::filesystem::exists(file));
  }
  SUBCASE("the file is writable but its directory is not (no room for -wal, -shm)") {
    const auto sub = make_dir(dir / "ro-dir-file", 0755);
    const auto file = sub / "blade.db";
    { Store store(file); }
    OpenOutcome outcome;
    if (root) {
      REQUIRE(::chown(file.c_str(), kNobody, kNobody) == 0);
      outcome = try_open_as_nobody(file);
    } else {
      REQUIRE(::chmod(sub.c_str(), 0555) == 0);
      outcome = try_open(file);
      ::chmod(sub.c_str(), 0755);
    }
    check_cannot_write(outcome, file, "readonly database");
  }
}

TEST_CASE("store: a database locked by another connection is refused at open") {
  TempDir dir("blade-store");
  const auto file = dir / "blade.db";

  SUBCASE("a WAL database whose write lock is held") {
    { Store store(file); }
    RawDb other(file);
    REQUIRE(other.exec("BEGIN EXCLUSIVE") == SQLITE_OK);
    const auto started = std::chrono::steady_clock::now();
    const auto error = error_of([&] { Store store(file, 100ms); });
    const auto waited = std::chrono::steady_clock::now() - started;
    REQUIRE(error.has_value());
    CHECK(error->code() == ErrorCode::Unavailable);
    INFO("message: ", std::string(error->what()));
    CHECK(contains(error->what(), file.string()));
    CHECK(contains(error->what(), "locked"));
    CHECK(waited >= 100ms);  // it did wait for the busy timeout first
    CHECK(waited < 5s);
  }
  SUBCASE("a rollback-journal database under an exclusive lock") {
    RawDb other(file);
    REQUIRE(other.exec("CREATE TABLE t (x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1)") ==
            SQLITE_OK);
    const auto error = error_of([&] { Store store(file, 100ms); });
    REQUIRE(error.has_value());
    CHECK(error->code() == ErrorCode::Unavailable);
    INFO("message: ", std::string(error->what()));
    CHECK(contains(error->what(), file.string()));
    CHECK(contains(error->what(), "locked"));
  }
}

TEST_CASE("store: an open store holds its file: another connection can neither write nor "
          "read it, and a second store is refused naming the lock") {
  TempDir dir("blade-store");
  const auto file = dir / "blade.db";
  Store store(file, 100ms);
  store.insert_experiment(full_experiment(uid_of(60)));

  {
    RawDb other(file);
    CHECK(other.exec("BEGIN IMMEDIATE") == SQLITE_BUSY);
    CHECK(other.exec("SELECT count(*) FROM experiments") == SQLITE_BUSY);
  }
  const auto started = std::chrono::steady_clock::now();
  const auto error = error_of([&] { Store second(file, 100ms); });
  REQUIRE(error.has_value());
  CHECK(error->code() == ErrorCode::Unavailable);
  INFO("message: ", std::string(error->what()));
  CHECK(contains(error->what(), "locked"));
  CHECK(contains(error->what(), file.string()));
  CHECK(std::chrono::steady_clock::now() - started >= 100ms);  // it waited the busy timeout

  // The store itself goes on.
  store.insert_experiment(full_experiment(uid_of(61)));
  CHECK(store.get_experiment(uid_of(60)).has_value());
  CHECK(store.list_experiments({}).total == 2);
}

TEST_CASE("store: 8 threads inserting, updating and reading lose nothing") {
  TempDir dir("blade-store");
  Store store(dir / "blade.db");
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  std::atomic<int> failures{0};
  std::mutex first_failure_mutex;
  std::string first_failure;
  auto fail = [&](const std::string &what) {
    if (failures++ == 0) {
      std::lock_guard lock(first_failure_mutex);
      first_failure = what;
    }
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        try {
          Experiment e = bare_experiment(uid_of(t * 10000 + i));
          e.created_at = at_ms(kBaseMs + i);
          store.insert_experiment(e);
          e.status = ExperimentStatus::Running;
          e.started_at = at_ms(kBaseMs + i + 1);
          e.restore_json = fmt::format(R"({{"thread":{},"i":{}}})", t, i);
          store.update_experiment(e);
          const auto got = store.get_experiment(e.uid);
          if (!got || got->status != ExperimentStatus::Running ||
              got->restore_json != e.restore_json)
            fail("read back a stale or missing row: " + e.uid);
          if (i % 20 == 0) {
            ExperimentFilter f;
            f.status = ExperimentStatus::Running;
            f.limit = 10;
            if (store.list_experiments(f).total < i + 1) fail("list total went backwards");
            store.count_active_experiments();
          }
        } catch (const std::exception &e) {
          fail(e.what());
        }
      }
    });
  }
  for (std::thread &thread : threads)
    thread.join();
  INFO("first failure: ", first_failure);
  CHECK(failures.load() == 0);

  constexpr int kTotal = kThreads * kPerThread;
  CHECK(store.count_active_experiments() == kTotal);
  std::vector<std::string> seen;
  ExperimentFilter f;
  f.limit = 1000;
  for (f.offset = 0; f.offset < kTotal; f.offset += f.limit) {
    const auto page = store.list_experiments(f);
    CHECK(page.total == kTotal);
    for (const Experiment &e : page.items) {
      CHECK(e.status == ExperimentStatus::Running);
      seen.push_back(e.uid);
    }
  }
  std::sort(seen.begin(), seen.end());
  CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());
  CHECK(seen.size() == static_cast<std::size_t>(kTotal));
}

// ---- issue 17: one transaction per write, counted ----

namespace {

std::int64_t audit_count(Store &store) {
  return static_cast<std::int64_t>(store.list_audit(1000).size());
}

AuditEntry request_line(int n) {
  AuditEntry a;
  a.time = at_ms(kBaseMs + n);
  a.actor = "tester";
  a.action = "http.request";
  a.subject = fmt::format("GET /v1/experiments/{}", n);
  a.outcome = "200";
  return a;
}

// What a call cost, from stats() before and after.
struct Cost {
  std::uint64_t transactions = 0;
  std::uint64_t statements = 0;
};

template <class F>
Cost cost_of(Store &store, F &&f) {
  const auto before = store.stats();
  f();
  const auto after = store.stats();
  return {after.transactions - before.transactions, after.statements - before.statements};
}

}  // namespace

TEST_CASE("store: each write is one transaction; its statements are counted exactly") {
  TempDir dir("blade-store");
  Store store(dir / "blade.db");
  AuditEntry audit = request_line(0);
  audit.action = "experiment.create";
  Experiment e = bare_experiment(uid_of(70));
  e.status = ExperimentStatus::Running;

  // BEGIN, INSERT, INSERT audit, COMMIT.
  Cost cost = cost_of(store, [&] { store.insert_experiment(e, &audit); });
  CHECK(cost.transactions == 1);
  CHECK(cost.statements == 4);
  // The same for a state change of a row still live: no read-back, no
  // UPDATE of the identity.
  e.status = ExperimentStatus::Destroyed;
  cost = cost_of(store, [&] { store.update_experiment(e, &audit); });
  CHECK(cost.transactions == 1);
  CHECK(cost.statements == 4);
  // A terminal row is read once for the status it leaves.
  e.error = "again";
  cost = cost_of(store, [&] { store.update_experiment(e); });
  CHECK(cost.transactions == 1);
  CHECK(cost.statements == 4);  // BEGIN, SELECT, UPDATE, COMMIT
  // The write-ahead record: BEGIN, the upsert, COMMIT (its fsync is no
  // statement).
  const Experiment ahead = bare_experiment(uid_of(71));
  cost = cost_of(store, [&] { store.save_restore_record(ahead, R"({"step":1})", at_ms(kBaseMs)); });
  CHECK(cost.transactions == 1);
  CHECK(cost.statements == 3);
  // Reads: one statement each, no transaction; counts none at all.
  cost = cost_of(store, [&] { store.get_experiment(e.uid); });
  CHECK(cost.transactions == 0);
  CHECK(cost.statements == 1);
  cost = cost_of(store, [&] {
    CHECK(store.count_active_experiments() == 0);
    CHECK(store.count_experiments_by_status().at(ExperimentStatus::Created) == 1);
  });
  CHECK(cost.statements == 0);
  ExperimentFilter f;
  f.status = ExperimentStatus::Destroyed;
  cost = cost_of(store, [&] { CHECK(store.list_experiments(f).total == 1); });
  CHECK(cost.statements == 1);  // the page; its total is kept in memory
  CHECK(store.stats().rows_written >= 5);
}

TEST_CASE("store: queued audit lines ride in the next write's transaction") {
  TempDir dir("blade-store");
  Store store(dir / "blade.db");
  for (int i = 0; i < 3; ++i)
    store.queue_audit(request_line(i));
  AuditEntry audit = request_line(10);
  audit.action = "experiment.create";
  const Cost cost =
      cost_of(store, [&] { store.insert_experiment(bare_experiment(uid_of(72)), &audit); });
  CHECK(cost.transactions == 1);
  CHECK(cost.statements == 7);  // BEGIN, INSERT, its audit line, 3 queued lines, COMMIT
  // Committed with it: visible without a flush.
  const auto lines = store.list_audit(10);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].subject == "GET /v1/experiments/2");  // newest first
  CHECK(lines[3].action == "experiment.create");

  // A write that fails leaves the lines queued for the next one.
  store.queue_audit(request_line(3));
  CHECK(error_of([&] { store.insert_experiment(bare_experiment(uid_of(72))); })->code() ==
        ErrorCode::AlreadyExists);
  store.flush_audit();
  CHECK(audit_count(store) == 5);
  CHECK(store.list_audit(1).at(0).subject == "GET /v1/experiments/3");
}

TEST_CASE("store: with no write to ride in, queued lines are written by the store's thread") {
  TempDir dir("blade-store");
  Store store(dir / "blade.db");
  const auto before = store.stats();
  const auto queued = std::chrono::steady_clock::now();
  store.queue_audit(request_line(0));
  store.queue_audit(request_line(1));
  while (store.stats().transactions == before.transactions &&
         std::chrono::steady_clock::now() - queued < 5s)
    std::this_thread::sleep_for(5ms);
  const auto took = std::chrono::steady_clock::now() - queued;
  MESSAGE("written after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                           << " ms");
  CHECK(took < 1s);  // ~100 ms on an idle machine
  CHECK(store.stats().transactions == before.transactions + 1);  // both in one
  CHECK(audit_count(store) == 2);
  // flush_audit writes at once what is queued, and nothing when nothing is.
  store.queue_audit(request_line(2));
  store.flush_audit();
  CHECK(audit_count(store) == 3);
  const Cost idle = cost_of(store, [&] { store.flush_audit(); });
  CHECK(idle.transactions == 0);
  CHECK(idle.statements == 0);
}

TEST_CASE("store: the audit backlog is bounded; a caller past the bound waits for a write") {
  blade::AuditBacklog backlog;
  for (std::size_t i = 0; i < blade::AuditBacklog::kMaxPending; ++i)
    backlog.add(request_line(static_cast<int>(i)));
  std::atomic<bool> added{false};
  std::thread late([&] {
    backlog.add(request_line(-1));
    added = true;
  });
  std::this_thread::sleep_for(200ms);
  CHECK_FALSE(added.load());  // still waiting
  CHECK(backlog.added() == blade::AuditBacklog::kMaxPending);
  auto taken = backlog.take();
  CHECK(taken.size() == blade::AuditBacklog::kMaxPending);
  late.join();
  CHECK(added.load());
  // A failed write gives its lines back in front, in order.
  backlog.give_back(std::move(taken));
  const auto again = backlog.take();
  REQUIRE(again.size() == blade::AuditBacklog::kMaxPending + 1);
  CHECK(again.front().subject == "GET /v1/experiments/0");
  CHECK(again.back().subject == "GET /v1/experiments/-1");
  backlog.finished(again.size());
  CHECK(backlog.done() == backlog.added());
}

TEST_CASE("store: save_restore_record inserts the created row or updates it, never a later one") {
  TempDir dir("blade-store");
  Store store(dir / "blade.db");
  const auto created_rows = [] {
    ExperimentFilter f;
    f.status = ExperimentStatus::Created;
    return f;
  }();

  SUBCASE("no row yet: inserted as created, with the record") {
    Experiment e = full_experiment(uid_of(80));
    e.status = ExperimentStatus::Running;  // what the create will make of it; not stored yet
    store.save_restore_record(e, R"({"step":1})", at_ms(kBaseMs + 7));
    const auto got = store.get_experiment(e.uid);
    REQUIRE(got);
    CHECK(got->status == ExperimentStatus::Created);
    CHECK(got->restore_json == R"({"step":1})");
    CHECK(ms_of(got->updated_at) == kBaseMs + 7);
    CHECK(got->flags == e.flags);
    CHECK(got->target == e.target);
    CHECK(store.list_experiments(created_rows).total == 1);
    // The second record updates it.
    store.save_restore_record(e, R"({"step":2})", at_ms(kBaseMs + 8));
    CHECK(store.get_experiment(e.uid)->restore_json == R"({"step":2})");
    CHECK(store.list_experiments(created_rows).total == 1);
    CHECK(store.list_experiments({}).total == 1);
  }
  SUBCASE("a row inserted up front: updated") {
    const Experiment e = bare_experiment(uid_of(81));
    store.insert_experiment(e);
    store.save_restore_record(e, R"({"step":1})", at_ms(kBaseMs + 9));
    const auto got = store.get_experiment(e.uid);
    CHECK(got->restore_json == R"({"step":1})");
    CHECK(ms_of(got->updated_at) == kBaseMs + 9);
    CHECK(store.list_experiments({}).total == 1);
  }
  SUBCASE("a row past created: FailedPrecondition, the row untouched") {
    Experiment e = bare_experiment(uid_of(82));
    e.status = ExperimentStatus::Running;
    e.restore_json = R"({"kept":true})";
    store.insert_experiment(e);
    const auto error = error_of([&] { store.save_restore_record(e, "{}", at_ms(kBaseMs)); });
    REQUIRE(error);
    CHECK(error->code() == ErrorCode::FailedPrecondition);
    CHECK(store.get_experiment(e.uid)->restore_json == R"({"kept":true})");
    CHECK(store.count_active_experiments() == 1);
    CHECK(store.list_experiments(created_rows).total == 0);
  }
}

TEST_CASE("store: counts kept in memory stay exact across inserts, updates, removals and "
          "failed writes") {
  TempDir dir("blade-store");
  const auto file = dir / "blade.db";
  const std::vector<std::string> targets = {"cpu", "mem", "network"};
  const std::vector<std::string> scopes = {"host", "docker"};
  std::vector<ExperimentFilter> filters;
  {
    ExperimentFilter f;
    filters.push_back(f);
    for (auto status : {ExperimentStatus::Created, ExperimentStatus::Running,
                        ExperimentStatus::Destroying, ExperimentStatus::Destroyed,
                        ExperimentStatus::Failed}) {
      f = {};
      f.status = status;
      filters.push_back(f);
      for (const auto &t : targets) {
        f.target = t;
        filters.push_back(f);
        f.scope = "docker";
        filters.push_back(f);
        f.scope.reset();
      }
    }
    f = {};
    f.action = "a1";
    filters.push_back(f);
    f.scope = "host";
    filters.push_back(f);
  }
  std::vector<std::int64_t> kept;
  std::map<ExperimentStatus, std::int64_t> by_status;
  std::int64_t active = 0;
  {
    Store store(file);
    std::mt19937 random(17);
    std::vector<Experiment> rows;
    for (int i = 0; i < 600; ++i) {
      const int op = static_cast<int>(random() % 6);
      if (rows.empty() || op < 2) {
        Experiment e = bare_experiment(uid_of(90000 + i));
        e.target = targets[random() % targets.size()];
        e.scope = scopes[random() % scopes.size()];
        e.action = fmt::format("a{}", random() % 3);
        e.created_at = at_ms(kBaseMs + i);
        if (random() % 2) {
          store.insert_experiment(e);
        } else {
          store.save_restore_record(e, R"({"step":1})", e.created_at);
          e.restore_json = R"({"step":1})";
        }
        rows.push_back(e);
        continue;
      }
      Experiment &e = rows[random() % rows.size()];
      if (op == 2) {  // the lifecycle's next step, or a rewrite of a terminal row
        const ExperimentStatus next[] = {ExperimentStatus::Running, ExperimentStatus::Destroying,
                                         ExperimentStatus::Destroyed, ExperimentStatus::Destroyed,
                                         ExperimentStatus::Failed};
        e.status = next[static_cast<int>(e.status)];
        store.update_experiment(e);
      } else if (op == 3) {  // fails: the uid is taken
        CHECK(error_of([&] { store.insert_experiment(e); })->code() == ErrorCode::AlreadyExists);
      } else if (op == 4) {  // a refused create: removed only if created without a record
        const bool removable = e.status == ExperimentStatus::Created && e.restore_json.empty();
        const auto error = error_of([&] { store.forget_refused_experiment(e.uid, {}); });
        CHECK(error.has_value() == !removable);
        if (removable) {
          std::swap(e, rows.back());
          rows.pop_back();
        }
      } else {  // fails unless still created
        const bool created = e.status == ExperimentStatus::Created;
        const auto error = error_of([&] { store.save_restore_record(e, "{}", e.created_at); });
        CHECK(error.has_value() == !created);
        if (created) e.restore_json = "{}";
      }
    }
    // A missing row: nothing counted.
    CHECK(error_of([&] { store.update_experiment(bare_experiment(uid_of(1))); })->code() ==
          ErrorCode::NotFound);
    for (const auto &f : filters) {
      // The truth, counted from the rows walked page by page.
      std::int64_t walked = 0;
      ExperimentFilter page = f;
      page.limit = 1000;
      walked = static_cast<std::int64_t>(store.list_experiments(page).items.size());
      const std::int64_t total = store.list_experiments(f).total;
      CHECK(total == walked);
      kept.push_back(total);
    }
    by_status = store.count_experiments_by_status();
    active = store.count_active_experiments();
    std::int64_t in_memory = 0;
    for (const auto &row : rows)
      in_memory += is_active(row.status);
    CHECK(active == in_memory);
  }
  // Reopened, the counts are read from the file: the same.
  Store store(file);
  for (std::size_t i = 0; i < filters.size(); ++i)
    CHECK(store.list_experiments(filters[i]).total == kept[i]);
  CHECK(store.count_experiments_by_status() == by_status);
  CHECK(store.count_active_experiments() == active);
}

TEST_CASE("store: keyset pages walk every row exactly once, in both orders, while rows are "
          "inserted") {
  TempDir dir("blade-store");
  Store store(dir / "blade.db");
  constexpr int kRows = 700;
  std::vector<std::string> existing;
  for (int i = 0; i < kRows; ++i) {
    Experiment e = bare_experiment(uid_of(100000 + i));
    e.created_at = at_ms(kBaseMs + i / 7);  // seven rows share each millisecond
    e.status = i % 3 == 0 ? ExperimentStatus::Running : ExperimentStatus::Destroyed;
    store.insert_experiment(e);
    existing.push_back(e.uid);
  }
  for (const bool ascending : {true, false}) {
    for (const bool filtered : {false, true}) {
      CAPTURE(ascending);
      CAPTURE(filtered);
      std::atomic<bool> stop{false};
      std::atomic<int> next_uid{200000 + (ascending ? 0 : 50000) + (filtered ? 20000 : 0)};
      // Newer rows arrive all along (and one in the past, at the first
      // millisecond: the walk may or may not meet it, never twice).
      std::thread writer([&] {
        while (!stop) {
          Experiment e = bare_experiment(uid_of(next_uid++));
          e.created_at = at_ms(next_uid % 5 == 0 ? kBaseMs : kBaseMs + 1000 + next_uid);
          e.status = ExperimentStatus::Running;
          store.insert_experiment(e);
          std::this_thread::sleep_for(1ms);
        }
      });
      ExperimentFilter f;
      f.ascending = ascending;
      f.limit = 37;
      if (filtered) f.status = ExperimentStatus::Running;
      std::vector<std::string> seen;
      std::vector<SystemTime> times;
      int pages = 0;
      for (;;) {
        const auto page = store.list_experiments(f);
        ++pages;
        for (const auto &e : page.items) {
          seen.push_back(e.uid);
          times.push_back(e.created_at);
        }
        if (page.next.empty()) {
          CHECK(page.items.size() <= 37);
          break;
        }
        CHECK(page.items.size() == 37);
        f.after = page.next;
        if (pages > 200) break;  // stop the walk chasing the writer for ever
      }
      stop = true;
      writer.join();
      // Never a row twice, always in order, every row that existed before
      // the walk (and matches) met once.
      CHECK(std::is_sorted(times.begin(), times.end(), [&](SystemTime a, SystemTime b) {
        return ascending ? a < b : b < a;
      }));
      auto sorted = seen;
      std::sort(sorted.begin(), sorted.end());
      CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
      for (int i = 0; i < kRows; ++i)
        if (!filtered || i % 3 == 0)
          CHECK(std::binary_search(sorted.begin(), sorted.end(), existing[i]));
    }
  }
}

TEST_CASE("store: a malformed cursor, or one with an offset, is refused naming `after`") {
  TempDir dir("blade-store");
  Store store(dir / "blade.db");
  for (int i = 0; i < 3; ++i)
    store.insert_experiment(bare_experiment(uid_of(300 + i)));
  ExperimentFilter f;
  f.limit = 2;
  const auto first = store.list_experiments(f);
  REQUIRE_FALSE(first.next.empty());
  CHECK(first.total == 3);
  for (const std::string bad : {"", "zz", "1", "1.", ".1", "1.0", "1.-2", "A.1", "1.1.1",
                                "11111111111111111.1", " 1.1"}) {
    CAPTURE(bad);
    f.after = bad;
    const auto error = error_of([&] { store.list_experiments(f); });
    REQUIRE(error);
    CHECK(error->code() == ErrorCode::InvalidArgument);
    REQUIRE(error->details().size() == 1);
    CHECK(error->details()[0].field == "after");
  }
  f.after = first.next;
  const auto second = store.list_experiments(f);
  CHECK(second.items.size() == 1);
  CHECK(second.next.empty());
  f.offset = 1;
  const auto error = error_of([&] { store.list_experiments(f); });
  REQUIRE(error);
  CHECK(error->details().at(0).field == "after");
  // Preparations take the same cursor.
  for (int i = 0; i < 3; ++i) {
    Preparation p;
    p.uid = uid_of(400 + i);
    p.type = "jvm";
    p.created_at = p.updated_at = at_ms(kBaseMs + i);
    store.insert_preparation(p);
  }
  PreparationFilter pf;
  pf.limit = 2;
  const auto page = store.list_preparations(pf);
  REQUIRE(page.items.size() == 2);
  pf.after = page.next;
  const auto rest = store.list_preparations(pf);
  REQUIRE(rest.items.size() == 1);
  CHECK(rest.items[0].uid == uid_of(400));
  CHECK(rest.next.empty());
}

TEST_CASE("store: after 10,000 writes and a quiet second the WAL is empty") {
  TempDir dir("blade-store");
  const auto file = dir / "blade.db";
  Store store(file);
  AuditEntry audit = request_line(0);
  for (int i = 0; i < 10000; ++i) {
    Experiment e = bare_experiment(uid_of(500000 + i));
    e.status = ExperimentStatus::Running;
    store.insert_experiment(e, &audit);
  }
  const auto wal = std::filesystem::path(file.string() + "-wal");
  const auto size = [&] {
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(wal, ec);
    return ec ? 0 : bytes;
  };
  MESSAGE("WAL after the writes: " << size() << " bytes");
  CHECK(size() <= 20u * 1024 * 1024);  // checkpointed under load too
  const auto quiet = std::chrono::steady_clock::now();
  while (size() > 0 && std::chrono::steady_clock::now() - quiet < 5s)
    std::this_thread::sleep_for(20ms);
  CHECK(size() == 0);
  CHECK(std::chrono::steady_clock::now() - quiet < 3s);  // ~1 s on an idle machine
  CHECK_FALSE(std::filesystem::exists(file.string() + "-shm"));  // the WAL index is in the heap
  CHECK(store.list_experiments({}).total == 10000);
}

TEST_CASE("store: a write whose commit fails (a full disk) changes no count") {
  if (!running_as_root()) {
    MESSAGE("skipped: mounting a small filesystem needs root");
    return;
  }
  blade::test::ScratchFs small("tmpfs", 2);
  Store store(small / "blade.db");
  Experiment live = bare_experiment(uid_of(600));
  live.status = ExperimentStatus::Running;
  store.insert_experiment(live);
  const auto totals = [&] {
    ExperimentFilter running;
    running.status = ExperimentStatus::Running;
    ExperimentFilter destroyed;
    destroyed.status = ExperimentStatus::Destroyed;
    return std::vector<std::int64_t>{store.list_experiments({}).total,
                                     store.list_experiments(running).total,
                                     store.list_experiments(destroyed).total,
                                     store.count_active_experiments()};
  };
  const auto before = totals();
  CHECK(before == std::vector<std::int64_t>{1, 1, 0, 1});
  {
    // Every free byte taken: the next commit cannot grow the WAL.
    const auto filler = small / "filler";
    std::FILE *f = std::fopen(filler.c_str(), "wb");
    REQUIRE(f);
    std::setvbuf(f, nullptr, _IONBF, 0);
    static const std::string block(64 * 1024, '\0');
    for (std::size_t piece : {block.size(), std::size_t{4096}, std::size_t{1}})
      while (std::fwrite(block.data(), 1, piece, f) == piece) {
      }
    std::fclose(f);
    // Rows big enough to need pages of their own.
    Experiment added = bare_experiment(uid_of(601));
    added.result_json = std::string(20000, 'x');
    const auto inserted = error_of([&] { store.insert_experiment(added); });
    REQUIRE(inserted);
    CHECK(inserted->code() == ErrorCode::Unavailable);
    INFO("message: ", std::string(inserted->what()));
    CHECK(contains(inserted->what(), "COMMIT"));  // the row was in, the count changed, undone
    live.status = ExperimentStatus::Destroyed;
    live.result_json = std::string(20000, 'y');
    const auto updated = error_of([&] { store.update_experiment(live); });
    REQUIRE(updated);
    CHECK(updated->code() == ErrorCode::Unavailable);
    CHECK(totals() == before);
    std::filesystem::remove(filler);
  }
  // Room again: the same writes land, and are counted.
  store.update_experiment(live);
  CHECK(totals() == std::vector<std::int64_t>{1, 0, 1, 0});
}
