#include "audit_backlog.hpp"

#include <iterator>
#include <utility>

namespace blade {

bool AuditBacklog::add(AuditEntry entry) {
  std::unique_lock lock(mutex_);
  room_.wait(lock, [this] { return pending_.size() < kMaxPending; });
  pending_.push_back(std::move(entry));
  ++added_;
  size_.store(pending_.size(), std::memory_order_release);
  return pending_.size() == 1;
}

std::uint64_t AuditBacklog::added() const {
  std::lock_guard lock(mutex_);
  return added_;
}

std::uint64_t AuditBacklog::done() const {
  std::lock_guard lock(mutex_);
  return done_;
}

std::vector<AuditEntry> AuditBacklog::take() {
  // Without the lock when there is nothing: a line added meanwhile rides
  // with the next write (flush_audit's own, if someone waits for it).
  if (empty()) return {};
  std::vector<AuditEntry> lines;
  {
    std::lock_guard lock(mutex_);
    lines.swap(pending_);
    size_.store(0, std::memory_order_release);
  }
  if (!lines.empty()) room_.notify_all();
  return lines;
}

void AuditBacklog::finished(std::size_t lines) {
  if (lines == 0) return;
  std::lock_guard lock(mutex_);
  done_ += lines;
}

void AuditBacklog::give_back(std::vector<AuditEntry> lines) {
  if (lines.empty()) return;
  std::lock_guard lock(mutex_);
  // May pass kMaxPending by what was taken; the next take() clears it all.
  pending_.insert(pending_.begin(), std::make_move_iterator(lines.begin()),
                  std::make_move_iterator(lines.end()));
  size_.store(pending_.size(), std::memory_order_release);
}

}  // namespace blade
