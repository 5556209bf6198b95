#include "store_upkeep.hpp"

#include <string>

#include "blade/core/model/error.hpp"
#include "blade/core/model/log.hpp"
#include "store_impl.hpp"

namespace blade {

StoreUpkeep::StoreUpkeep(Store::Impl &store)
    : store_(store),
      seen_transactions_(store.db->transactions()),
      last_write_(std::chrono::steady_clock::now()),
      truncated_at_(store.db->transactions()),
      thread_([this] { run(); }) {}

StoreUpkeep::~StoreUpkeep() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void StoreUpkeep::poke() {
  if (!idle_.load()) return;
  {
    std::lock_guard lock(mutex_);
    idle_.store(false);
  }
  wake_.notify_one();
}

void StoreUpkeep::hurry() {
  if (hurry_.exchange(true)) return;  // once per checkpoint
  {
    std::lock_guard lock(mutex_);
    idle_.store(false);
  }
  wake_.notify_one();
}

bool StoreUpkeep::has_work() const {
  return !store_.backlog.empty() || store_.db->transactions() != truncated_at_.load();
}

void StoreUpkeep::run() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    if (has_work()) {
      // A round's wait first: lines queued meanwhile go in one transaction,
      // or ride in a write that comes.
      wake_.wait_for(lock, kRound, [this] { return stop_ || hurry_.load(); });
      if (stop_) break;
      lock.unlock();
      round();
      lock.lock();
      continue;
    }
    // Asleep until poked: an idle daemon's store wakes for nothing. Idle is
    // announced before the last look for work, and poke() sets its work
    // before it reads idle, so one of the two always sees the other.
    idle_.store(true);
    if (has_work()) {
      idle_.store(false);
      continue;
    }
    wake_.wait(lock, [this] { return stop_ || !idle_.load(); });
  }
}

void StoreUpkeep::round() {
  hurry_.store(false);
  const auto now = std::chrono::steady_clock::now();
  const std::uint64_t transactions = store_.db->transactions();
  const bool wrote = transactions != seen_transactions_;
  seen_transactions_ = transactions;
  if (wrote) last_write_ = now;
  // Lines no commit carried since the last round.
  if (!wrote && !store_.backlog.empty()) write_backlog();
  try {
    if (store_.db->wal_frames() >= kCheckpointFrames) {
      presync_wal();
      store_.checkpoint(SQLITE_CHECKPOINT_PASSIVE);
    } else if (now - last_write_ >= kQuietBeforeTruncate) {
      presync_wal();
      // The count read before the checkpoint: a write that slips in after
      // it leaves work for a later round.
      const std::uint64_t before = store_.db->transactions();
      if (store_.checkpoint(SQLITE_CHECKPOINT_TRUNCATE)) truncated_at_.store(before);
    }
  } catch (const Error &e) {
    // A later round tries again; the WAL only grows meanwhile.
    log::warn("WAL checkpoint failed", {{"error", e.what()}});
  }
}

// Commits in NORMAL mode never sync the WAL, so by checkpoint time it holds
// megabytes of dirty pages, and the checkpoint's own sync of it runs under
// the store's mutex with every request waiting (p99 125-370 ms measured).
// Syncing here first, while writers go on, leaves that sync only what was
// written since. A failure only means the checkpoint does the whole sync.
void StoreUpkeep::presync_wal() {
  try {
    store_.sync_wal_file();
  } catch (const Error &) {
    // Not even logged: the checkpoint that follows syncs the WAL itself,
    // and reports its own failure.
  }
}

void StoreUpkeep::write_backlog() {
  try {
    store_.write([](sqlite::Connection &) {});
  } catch (const Error &e) {
    // Given up on, loudly, as a lost line of the service's own audit
    // deserves; the requests themselves were answered already, and callers
    // must not wait forever behind a store that cannot write.
    const std::size_t lines = store_.backlog.take().size();
    store_.backlog.finished(lines);
    log::error("audit write failed", {{"lines", std::to_string(lines)}, {"error", e.what()}});
  }
}

}  // namespace blade
