#include "experiment_counts.hpp"

#include <fmt/format.h>

#include "blade/core/model/error.hpp"

namespace blade {
namespace {

ExperimentStatus status_of(const sqlite::Statement &s, int column, const sqlite::Connection &c) {
  const std::string text = s.text(column);
  const auto status = experiment_status_from_string(text);
  if (!status)
    throw Error(ErrorCode::Internal,
                fmt::format("database {}: an experiment has unknown status \"{}\"",
                            c.file().string(), text));
  return *status;
}

}  // namespace

ExperimentKey key_of(const Experiment &e) {
  return {e.status, e.scope, e.target, e.action};
}

void ExperimentCounts::load(sqlite::Connection &c) {
  counts_.clear();
  live_.clear();
  pending_.clear();
  {
    auto rows = c.prepare(
        "SELECT status, scope, target, action, count(*) FROM experiments "
        "GROUP BY status, scope, target, action");
    while (rows->step())
      counts_[{status_of(*rows, 0, c), rows->text(1), rows->text(2), rows->text(3)}] =
          rows->int64(4);
  }
  auto rows = c.prepare(
      "SELECT uid, status, scope, target, action FROM experiments "
      "WHERE status IN ('created', 'running', 'destroying')");
  while (rows->step())
    live_.emplace(rows->text(0), ExperimentKey{status_of(*rows, 1, c), rows->text(2),
                                               rows->text(3), rows->text(4)});
}

const ExperimentKey *ExperimentCounts::live(const std::string &uid) const {
  const auto it = live_.find(uid);
  return it == live_.end() ? nullptr : &it->second;
}

void ExperimentCounts::change(const std::string &uid, std::optional<ExperimentKey> before,
                              std::optional<ExperimentKey> after) {
  pending_.push_back({uid, std::move(before), std::move(after)});
}

void ExperimentCounts::commit() {
  for (Change &change : pending_) {
    if (change.before) {
      const auto it = counts_.find(*change.before);
      if (it != counts_.end() && --it->second == 0) counts_.erase(it);
      live_.erase(change.uid);
    }
    if (change.after) {
      ++counts_[*change.after];
      if (!is_terminal(change.after->status))
        live_.insert_or_assign(std::move(change.uid), std::move(*change.after));
    }
  }
  pending_.clear();
}

std::int64_t ExperimentCounts::matching(const std::optional<ExperimentStatus> &status,
                                        const std::optional<std::string> &scope,
                                        const std::optional<std::string> &target,
                                        const std::optional<std::string> &action) const {
  // Keys sort by status first: a status filter reads its range only.
  auto it = status ? counts_.lower_bound(ExperimentKey{*status, {}, {}, {}}) : counts_.begin();
  std::int64_t total = 0;
  for (; it != counts_.end(); ++it) {
    const ExperimentKey &key = it->first;
    if (status && key.status != *status) break;
    if ((scope && key.scope != *scope) || (target && key.target != *target) ||
        (action && key.action != *action))
      continue;
    total += it->second;
  }
  return total;
}

std::map<ExperimentStatus, std::int64_t> ExperimentCounts::by_status() const {
  std::map<ExperimentStatus, std::int64_t> out;
  for (const auto &[key, count] : counts_)
    out[key.status] += count;
  return out;
}

}  // namespace blade
