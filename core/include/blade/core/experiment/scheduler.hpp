// Worker threads on one Boost.Asio io_context. Jobs carry a key (an
// experiment's uid); jobs of one key run one at a time in the order posted,
// so one experiment's create, destroy and timeout never race.
#pragma once

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

 private:
  using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;
  // A fixed set of strands picked by the key's hash: a key always maps to the
  // same strand, and no strand ever has to be created or freed per key.
  static constexpr std::size_t kStrands = 64;
  Strand &strand_for(const std::string &key);

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<Strand> strands_;
  std::vector<std::thread> threads_;
  std::mutex timers_mutex_;
  std::map<TimerId, std::shared_ptr<boost::asio::steady_timer>> timers_;
  TimerId next_timer_ = 1;
  std::once_flag stopped_;
};

}  // namespace blade
