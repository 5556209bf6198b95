// Worker threads on one Boost.Asio io_context. Jobs carry a key (an
// experiment's uid); jobs of one key run one at a time in the order posted,
// so one experiment's create, destroy and timeout never race. A caller that
// runs work for a key on its own thread (a plugin call that needs no hop)
// holds the key's lane, which every job of that key also holds while it
// runs, so the two never overlap either.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

namespace blade {

class Scheduler {
 public:
  using Job = std::function<void()>;
  using TimerId = std::uint64_t;

  explicit Scheduler(std::size_t threads = 4);
  ~Scheduler();
  Scheduler(const Scheduler &) = delete;
  Scheduler &operator=(const Scheduler &) = delete;

  // Runs `job` on the strand of `key`.
  void post(const std::string &key, Job job);
  // Runs `job` on the strand of `key` at `when` unless cancelled first.
  TimerId schedule(const std::string &key, std::chrono::steady_clock::time_point when, Job job);
  // Cancels a timer that has not fired; asynchronous, so a job that may
  // still run must check its own preconditions.
  void cancel(TimerId id);
  // Finishes running jobs, drops queued ones and timers, joins the threads.
  void stop();
  // The lock held by every job of `key` while it runs. Keys share lanes as
  // they share strands (by hash), so a holder must not wait for another
  // key's job, nor take a second lane.
  std::mutex &lane(const std::string &key);

 private:
  using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;
  // A fixed set of strands picked by the key's hash: a key always maps to the
  // same strand, and no strand ever has to be created or freed per key.
  static constexpr std::size_t kStrands = 64;
  static std::size_t slot_of(const std::string &key);
  // Runs `job` under lane `slot` (on its strand).
  void run_in_lane(std::size_t slot, const Job &job);

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<Strand> strands_;
  std::array<std::mutex, kStrands> lanes_;
  std::vector<std::thread> threads_;
  std::mutex timers_mutex_;
  std::map<TimerId, std::shared_ptr<boost::asio::steady_timer>> timers_;
  TimerId next_timer_ = 1;
  std::once_flag stopped_;
};

}  // namespace blade
