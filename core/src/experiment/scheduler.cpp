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

Scheduler::Strand &Scheduler::strand_for(const std::string &key) {
  return strands_[std::hash<std::string>{}(key) % kStrands];
}

void Scheduler::post(const std::string &key, Job job) {
  boost::asio::post(strand_for(key), [job = std::move(job)] { run_guarded(job); });
}

Scheduler::TimerId Scheduler::schedule(const std::string &key,
                                       std::chrono::steady_clock::time_point when, Job job) {
  auto timer = std::make_shared<boost::asio::steady_timer>(strand_for(key), when);
  TimerId id;
  {
    std::lock_guard lock(timers_mutex_);
    id = next_timer_++;
    timers_[id] = timer;
  }
  timer->async_wait([this, id, job = std::move(job)](const boost::system::error_code &ec) {
    {
      std::lock_guard lock(timers_mutex_);
      timers_.erase(id);
    }
    if (!ec) run_guarded(job);
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
