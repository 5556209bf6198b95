// The plugin instance's event loop: one io_context run by a small fixed
// number of threads, shared by every proxy of the instance. Started at the
// first use (an instance that runs no proxy starts no thread) and stopped
// with the instance.
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace blade::http {

class IoPool {
 public:
  explicit IoPool(std::size_t threads) : threads_(threads == 0 ? 1 : threads) {}
  ~IoPool();
  IoPool(const IoPool &) = delete;
  IoPool &operator=(const IoPool &) = delete;

  // The io_context, its threads running (started on the first call).
  boost::asio::io_context &context();

 private:
  std::size_t threads_;
  std::mutex mu_;
  boost::asio::io_context io_;
  // Keeps run() from returning while no proxy has work queued.
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::vector<std::thread> running_;
};

}  // namespace blade::http
