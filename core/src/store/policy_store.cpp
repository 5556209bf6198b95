// Store methods for HTTP fault policies (table `policies`, migration 4).
#include <fmt/format.h>

#include "blade/core/model/bounded_json.hpp"
#include "blade/core/model/error.hpp"
#include "blade/core/store/store.hpp"
#include "sqlite_db.hpp"
#include "store_impl.hpp"
#include "store_rows.hpp"

namespace blade {
namespace {

using sqlite::Connection;
using sqlite::Statement;
using store_rows::from_ms;
using store_rows::insert_audit;
using store_rows::to_ms;

constexpr std::string_view kPolicyColumns =
    "name, version, spec_json, start_delay_ms, duration_s, created_at_ms, updated_at_ms, "
    "active_from_ms, expires_at_ms";

// Parameter numbers shared by insert and update: ?1 the name, ?2-?9 the rest.
constexpr std::string_view kInsertPolicy =
    "INSERT INTO policies (name, version, spec_json, start_delay_ms, duration_s, created_at_ms, "
    "updated_at_ms, active_from_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

constexpr std::string_view kUpdatePolicy =
    "UPDATE policies SET version = ?2, spec_json = ?3, start_delay_ms = ?4, duration_s = ?5, "
    "created_at_ms = ?6, updated_at_ms = ?7, active_from_ms = ?8, expires_at_ms = ?9 "
    "WHERE name = ?1";

void bind_policy(Statement &s, const FaultPolicy &p, const std::string &spec_json) {
  s.bind(1, p.name);
  s.bind(2, p.version);
  s.bind(3, spec_json);
  s.bind(4, p.start_delay_ms);
  s.bind(5, p.duration_seconds);
  s.bind(6, to_ms(p.created_at));
  s.bind(7, to_ms(p.updated_at));
  s.bind(8, to_ms(p.active_from));
  s.bind(9, to_ms(p.expires_at));
}

// Column numbers follow kPolicyColumns.
FaultPolicy read_policy(const Statement &s, const std::filesystem::path &file) {
  FaultPolicy p;
  p.name = s.text(0);
  p.version = s.int64(1);
  auto spec = parse_bounded_json(s.text(2));
  if (spec.problem != JsonProblem::None || !spec.value.is_object())
    throw Error(ErrorCode::Internal, fmt::format("database {}: policy {}: stored spec is not a "
                                                 "JSON object",
                                                 file.string(), p.name));
  p.spec = std::move(spec.value);
  p.start_delay_ms = s.int64(3);
  p.duration_seconds = s.int64(4);
  p.created_at = from_ms(s.int64(5));
  p.updated_at = from_ms(s.int64(6));
  p.active_from = from_ms(s.int64(7));
  p.expires_at = from_ms(s.optional_int64(8));
  return p;
}

std::vector<FaultPolicy> read_policies(Statement &s, const std::filesystem::path &file) {
  std::vector<FaultPolicy> out;
  while (s.step())
    out.push_back(read_policy(s, file));
  return out;
}

std::string spec_text(const FaultPolicy &p) {
  // The spec was parsed from JSON, so it is valid UTF-8 already; strict
  // anyway, so a bug can never store replaced bytes.
  return p.spec.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
}

}  // namespace

void Store::insert_policy(const FaultPolicy &p, const AuditEntry &audit) {
  const std::string spec_json = spec_text(p);
  impl_->write([&](Connection &c) {
    auto insert = c.prepare(kInsertPolicy);
    bind_policy(*insert, p, spec_json);
    try {
      insert->run();
    } catch (const Error &error) {
      if (error.code() != ErrorCode::AlreadyExists) throw;
      throw policy_exists(p.name);
    }
    insert_audit(c, audit);
  });
}

void Store::update_policy(const FaultPolicy &p, std::int64_t expected_version,
                          const AuditEntry &audit) {
  const std::string spec_json = spec_text(p);
  impl_->write([&](Connection &c) {
    // In write()'s transaction: the version read below cannot change before
    // the UPDATE.
    {
      auto select = c.prepare("SELECT version FROM policies WHERE name = ?1");
      select->bind(1, p.name);
      if (!select->step())
        throw policy_not_found(p.name);
      const std::int64_t stored = select->int64(0);
      if (stored != expected_version)
        throw policy_version_conflict(p.name, stored, expected_version);
    }
    auto update = c.prepare(kUpdatePolicy);
    bind_policy(*update, p, spec_json);
    update->run();
    insert_audit(c, audit);
  });
}

void Store::delete_policy(const std::string &name, const AuditEntry &audit) {
  impl_->write([&](Connection &c) {
    auto remove = c.prepare("DELETE FROM policies WHERE name = ?1");
    remove->bind(1, name);
    remove->run();
    if (c.changes() == 0) throw policy_not_found(name);
    insert_audit(c, audit);
  });
}

std::optional<FaultPolicy> Store::get_policy(const std::string &name) const {
  return impl_->read([&](Connection &c) -> std::optional<FaultPolicy> {
    static const std::string sql =
        fmt::format("SELECT {} FROM policies WHERE name = ?1", kPolicyColumns);
    auto select = c.prepare(sql);
    select->bind(1, name);
    if (!select->step()) return std::nullopt;
    return read_policy(*select, c.file());
  });
}

std::vector<FaultPolicy> Store::list_policies() const {
  return impl_->read([&](Connection &c) {
    static const std::string sql =
        fmt::format("SELECT {} FROM policies ORDER BY name", kPolicyColumns);
    auto select = c.prepare(sql);
    return read_policies(*select, c.file());
  });
}

std::vector<FaultPolicy> Store::delete_expired_policies(
    SystemTime now, const std::function<AuditEntry(const FaultPolicy &)> &audit) {
  return impl_->write([&](Connection &c) {
    std::vector<FaultPolicy> expired;
    {
      static const std::string sql = fmt::format(
          "SELECT {} FROM policies WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= ?1 "
          "ORDER BY name",
          kPolicyColumns);
      auto select = c.prepare(sql);
      select->bind(1, to_ms(now));
      expired = read_policies(*select, c.file());
    }
    for (const FaultPolicy &p : expired) {
      auto remove = c.prepare("DELETE FROM policies WHERE name = ?1");
      remove->bind(1, p.name);
      remove->run();
      insert_audit(c, audit(p));
    }
    return expired;
  });
}

}  // namespace blade
