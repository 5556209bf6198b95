#include "blade/core/experiment/scheduler.hpp"

#include <boost/asio/post.hpp>

#include "blade/core/model/log.hpp"

namespace blade {
namespace {

// A job's exception must not kill a worker thread (and with it the daemon).
void run_guarded(const Scheduler::Job &job) {
  try {
    job();
  } catch (const std::exception &e) {
    log::error("scheduled job failed", {{"error", e.what()}});
  } catch (...) {
    log::error("scheduled job failed", {{"error", "unknown exception"}});
  }
}

}  // namespace

Scheduler::Scheduler(std::size_t threads) : work_(io_.get_executor()) {
  strands_.reserve(kStrands);
  for (std::size_t i = 0; i < kStrands; ++i)
    strands_.emplace_back(io_.get_executor());
  for (std::size_t i = 0; i < std::max<std::size_t>(threads, 1); ++i)
    threads_.emplace_back([this] { io_.run(); });
}

Scheduler::~Scheduler() {
  stop();
}

std::size_t Scheduler::slot_of(const std::string &key) {
  return std::hash<std::string>{}(key) % kStrands;
}

std::mutex &Scheduler::lane(const std::string &key) {
  return lanes_[slot_of(key)];
}

void Scheduler::run_in_lane(std::size_t slot, const Job &job) {
  std::lock_guard lock(lanes_[slot]);
  run_guarded(job);
}

void Scheduler::post(const std::string &key, Job job) {
  const std::size_t slot = slot_of(key);
  boost::asio::post(strands_[slot],
                    [this, slot, job = std::move(job)] { run_in_lane(slot, job); });
}

Scheduler::TimerId Scheduler::schedule(const std::string &key,
                                       std::chrono::steady_clock::time_point when, Job job) {
  const std::size_t slot = slot_of(key);
  auto timer = std::make_shared<boost::asio::steady_timer>(strands_[slot], when);
  TimerId id;
  {
    std::lock_guard lock(timers_mutex_);
    id = next_timer_++;
    timers_[id] = timer;
  }
  timer->async_wait([this, id, slot, job = std::move(job)](const boost::system::error_code &ec) {
    {
      std::lock_guard lock(timers_mutex_);
      timers_.erase(id);
    }
    if (!ec) run_in_lane(slot, job);
  });
  return id;
}

void Scheduler::cancel(TimerId id) {
  std::shared_ptr<boost::asio::steady_timer> timer;
  {
    std::lock_guard lock(timers_mutex_);
    auto it = timers_.find(id);
    if (it == timers_.end()) return;
    timer = it->second;
    timers_.erase(it);
  }
  // A timer is not safe to touch from two threads; cancel it on its strand.
  boost::asio::post(timer->get_executor(), [timer] { timer->cancel(); });
}

void Scheduler::stop() {
  std::call_once(stopped_, [this] {
    work_.reset();
    io_.stop();
    for (auto &t : threads_)
      if (t.joinable()) t.join();
    std::lock_guard lock(timers_mutex_);
    timers_.clear();
  });
}

}  // namespace blade
