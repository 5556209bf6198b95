// Audit lines that need no transaction of their own (the HTTP layer's
// record of each request), waiting for the next write transaction of any
// kind to carry them: under load they cost one INSERT each inside a commit
// that happens anyway, instead of a commit (and a thread hop) of their own.
// The store's upkeep thread writes those no write came for.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "blade/core/store/store.hpp"

namespace blade {

class AuditBacklog {
 public:
  // Past this many pending lines a caller of add() waits for a write to
  // take them, so memory stays bounded when the store falls behind.
  static constexpr std::size_t kMaxPending = 10000;

  // True when the backlog was empty (the upkeep thread may be asleep).
  bool add(AuditEntry entry);
  bool empty() const { return size_.load(std::memory_order_acquire) == 0; }
  // Lines ever added; lines committed or given up on. A line added before
  // a write transaction began is done once that transaction is over.
  std::uint64_t added() const;
  std::uint64_t done() const;

  // For the write transaction about to commit: every pending line.
  std::vector<AuditEntry> take();
  // The transaction that took `lines` committed them (or, for the upkeep
  // thread's own failed write, gave up on them after logging).
  void finished(std::size_t lines);
  // The transaction that took `lines` failed: they go back to the front,
  // in order, for the next one.
  void give_back(std::vector<AuditEntry> lines);

 private:
  mutable std::mutex mutex_;
  std::condition_variable room_;
  std::vector<AuditEntry> pending_;
  std::atomic<std::size_t> size_{0};  // pending_.size(), readable without the lock
  std::uint64_t added_ = 0;
  std::uint64_t done_ = 0;
};

}  // namespace blade
