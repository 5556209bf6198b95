// Audit lines that need not share a transaction with a state change (the
// HTTP layer's record of each request) are written in batches by one thread:
// one commit per batch instead of one per request, so auditing every call
// costs the store little under load. State changes keep writing their own
// line in their own transaction (Store::update_experiment).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

#include "blade/core/store/store.hpp"

namespace blade {

class AuditQueue {
 public:
  explicit AuditQueue(Store &store);
  // Writes what is queued.
  ~AuditQueue();
  AuditQueue(const AuditQueue &) = delete;
  AuditQueue &operator=(const AuditQueue &) = delete;

  // Queues the line; never drops it. When the writer falls this far behind,
  // the caller waits for it, so memory stays bounded.
  static constexpr std::size_t kMaxQueued = 10000;
  void append(AuditEntry entry);
  // Returns once everything appended before the call is in the store (for
  // readers of the audit log, and shutdown).
  void flush();

 private:
  void run();

  Store &store_;
  std::mutex mutex_;
  std::condition_variable wake_;     // the writer: work or stop
  std::condition_variable written_;  // flushers and throttled appenders
  std::vector<AuditEntry> queued_;
  std::uint64_t appended_ = 0;  // lines appended so far
  std::uint64_t done_ = 0;      // lines written (or given up on) so far
  bool stop_ = false;
  std::thread thread_;  // last: starts once everything it uses exists
};

}  // namespace blade
