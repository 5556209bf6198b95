// The store's one background thread: writes the audit lines no write
// transaction came to carry (within ~100 ms), and keeps the WAL short:
// a checkpoint once it passes kCheckpointFrames under load, and once writes
// stop for a second a TRUNCATE, so the WAL is empty at rest. It works on the
// store's one connection under the store's mutex (with locking_mode
// EXCLUSIVE no other connection may open the file), so a checkpoint never
// competes with a reader and always empties the log it moves.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "blade/core/store/store.hpp"

namespace blade {

class StoreUpkeep {
 public:
  // 4 MiB of 4 KiB pages. A checkpoint's syncs hold every request behind
  // the store's mutex for as long as they take, which grows with the WAL:
  // http_bench 6 1 on this 2-core machine, pair p99 (pairs/s) at 256, 512,
  // 1024, 4096, 16384 frames: 12-13 ms (2,060-2,140), 15-16 (2,070-2,170),
  // 15-17 (2,510-2,610), 65-72 (2,130-2,170), 28-30 (1,880-1,980).
  static constexpr int kCheckpointFrames = 1024;
  // The bound that does not depend on this thread being scheduled: a commit
  // that leaves the WAL past it checkpoints on the writer's own thread (a
  // starved upkeep thread let it reach 77 MB in a loaded test run).
  static constexpr int kWriterCheckpointFrames = 4 * kCheckpointFrames;
  static constexpr std::chrono::milliseconds kRound{100};
  static constexpr std::chrono::milliseconds kQuietBeforeTruncate{1000};

  explicit StoreUpkeep(Store::Impl &store);
  ~StoreUpkeep();
  StoreUpkeep(const StoreUpkeep &) = delete;
  StoreUpkeep &operator=(const StoreUpkeep &) = delete;

  // Something may need doing (a commit, a queued line). Costs one atomic
  // load unless the thread sleeps.
  void poke();
  // The WAL has passed kCheckpointFrames: checkpoint now, not at the end of
  // the round (under heavy writes a round's wait adds as many frames again).
  void hurry();

 private:
  void run();
  bool has_work() const;
  void round();
  void write_backlog();
  // Flushes the WAL's dirty pages without the store's mutex (see round()).
  void presync_wal();

  Store::Impl &store_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<bool> idle_{false};
  std::atomic<bool> hurry_{false};
  bool stop_ = false;  // guarded by mutex_
  // The thread's own bookkeeping: the store's commit count when it last
  // looked, and when that count last moved.
  std::uint64_t seen_transactions_ = 0;
  std::chrono::steady_clock::time_point last_write_{};
  std::atomic<std::uint64_t> truncated_at_{0};  // commit count at the last TRUNCATE
  std::thread thread_;  // last: starts once everything it uses exists
};

}  // namespace blade
