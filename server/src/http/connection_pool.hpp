// bladed's accept loop and connection threads, in place of httplib's
// (listen_after_bind with a fixed ThreadPool), which a few slow clients could
// fill: 24 connections trickling header bytes held all 24 threads, and every
// route, health included, waited behind them.
//
// Here each connection has a thread of its own (threads are kept ready and
// started as needed), so a slow or idle client holds only itself up; what
// bounds the cost is:
//   - connections at once, in all and per client address (over either cap a
//     new connection is answered 503 or 429 and closed at once, by the
//     accept loop, which never waits on a client);
//   - a deadline per request for its headers and body (ConnectionStream);
//   - the keep-alive timeout for a connection waiting for its next request.
// httplib still parses each request and runs the routes (process_request).
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

#include <httplib.h>

namespace blade::server {

class ConnectionStream;

struct ConnectionLimits {
  int max_connections = 512;
  int max_per_address = 128;
  std::chrono::milliseconds request_timeout{10000};  // a request's headers and body
  std::chrono::milliseconds keep_alive_timeout{5000};  // waiting for the next request
  std::chrono::milliseconds write_timeout{10000};      // one stalled write
  std::size_t keep_alive_max = 1000;                   // requests per connection
  int ready_threads = 24;                              // idle threads kept
};

class ConnectionPool {
 public:
  // Reads one request from the stream and answers it (httplib's
  // process_request); false ends the connection.
  using ServeRequest =
      std::function<bool(httplib::Stream &, bool close_connection, bool &connection_closed)>;

  // `tls` (not owned; null for plain HTTP) makes each connection TLS.
  ConnectionPool(ConnectionLimits limits, SSL_CTX *tls, ServeRequest serve);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool &) = delete;
  ConnectionPool &operator=(const ConnectionPool &) = delete;

  // Accepts on `listen_fd` until stop(); returns once every connection has
  // ended. A stop() before run() makes run() return at once.
  void run(int listen_fd);
  // Thread-safe. Requests being read are cut off; answers being written
  // are finished, then their connections end.
  void stop();
  bool running() const { return running_.load(); }

 private:
  struct Connection {
    int fd = -1;
    std::string address;
  };

  // Counts the connection in, or answers why not (an HTTP status, 0 = in).
  int admit(const std::string &address);
  void release(const std::string &address);
  void refuse(int fd, int status, const std::string &address) const;
  void dispatch(Connection c);
  void worker();
  void serve(const Connection &c);

  const ConnectionLimits limits_;
  SSL_CTX *const tls_;
  const ServeRequest serve_request_;

  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> running_{false};

  std::mutex mutex_;  // guards everything below
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::deque<Connection> queue_;
  std::unordered_map<std::string, int> per_address_;
  std::set<ConnectionStream *> open_;
  int connections_ = 0;
  int threads_ = 0;
  int idle_ = 0;
  bool draining_ = false;
};

}  // namespace blade::server
