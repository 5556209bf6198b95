#include "io_pool.hpp"

namespace blade::http {

boost::asio::io_context &IoPool::context() {
  std::lock_guard lock(mu_);
  if (running_.empty()) {
    work_.emplace(io_.get_executor());
    for (std::size_t i = 0; i < threads_; ++i)
      running_.emplace_back([this] {
        // A handler that throws must not end the thread (nor the daemon,
        // which std::terminate would): the loop goes on with the next one.
        for (;;) {
          try {
            io_.run();
            return;
          } catch (...) {
          }
        }
      });
  }
  return io_;
}

IoPool::~IoPool() {
  // Every proxy was stopped before (the instance closes them first); what is
  // still queued is abandoned with the context.
  work_.reset();
  io_.stop();
  for (auto &t : running_) t.join();
}

}  // namespace blade::http
