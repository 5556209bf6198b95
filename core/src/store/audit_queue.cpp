#include "blade/core/store/audit_queue.hpp"

#include "blade/core/model/error.hpp"
#include "blade/core/model/log.hpp"

namespace blade {

AuditQueue::AuditQueue(Store &store) : store_(store), thread_([this] { run(); }) {}

AuditQueue::~AuditQueue() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void AuditQueue::append(AuditEntry entry) {
  std::unique_lock lock(mutex_);
  written_.wait(lock, [this] { return queued_.size() < kMaxQueued || stop_; });
  queued_.push_back(std::move(entry));
  ++appended_;
  lock.unlock();
  wake_.notify_one();
}

void AuditQueue::flush() {
  std::unique_lock lock(mutex_);
  const std::uint64_t target = appended_;
  written_.wait(lock, [&] { return done_ >= target; });
}

void AuditQueue::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stop_ || !queued_.empty(); });
    if (queued_.empty()) return;  // stopping with nothing left
    std::vector<AuditEntry> batch;
    batch.swap(queued_);
    lock.unlock();
    try {
      store_.append_audit(batch);
    } catch (const Error &e) {
      // Logged loudly, as a lost line of the service's own audit would be;
      // the requests themselves have been answered already.
      log::error("audit write failed",
                 {{"lines", std::to_string(batch.size())}, {"error", e.what()}});
    }
    lock.lock();
    done_ += batch.size();
    written_.notify_all();
  }
}

}  // namespace blade
