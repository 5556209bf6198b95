#include "store_rows.hpp"

namespace blade::store_rows {

std::int64_t insert_audit(sqlite::Connection &c, const AuditEntry &entry) {
  auto insert = c.prepare(
      "INSERT INTO audit (time_ms, actor, remote, action, subject, params_json, outcome) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  insert->bind(1, to_ms(entry.time));
  insert->bind(2, entry.actor);
  insert->bind(3, entry.remote);
  insert->bind(4, entry.action);
  insert->bind(5, entry.subject);
  insert->bind(6, entry.params_json);
  insert->bind(7, entry.outcome);
  insert->run();
  return c.last_insert_rowid();
}

}  // namespace blade::store_rows
