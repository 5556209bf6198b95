#include "connection_pool.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <thread>

#include <fmt/format.h>

#include "blade/core/model/error.hpp"
#include "blade/core/model/log.hpp"
#include "connection_stream.hpp"
#include "envelope.hpp"

namespace blade::server {
namespace {

using Clock = std::chrono::steady_clock;

// How often the accept loop looks at stop_requested_ when nobody connects.
constexpr int kAcceptPollMs = 100;
// A thread above limits_.ready_threads left idle this long ends.
constexpr auto kSpareThreadIdle = std::chrono::seconds(10);
// Refusals are logged at most this often (an attack would flood the log).
constexpr auto kRefusalLogEvery = std::chrono::seconds(10);

// Every connection is a descriptor: make room for the caps, as far as the
// hard limit allows, rather than fail accept() with EMFILE below them.
void raise_descriptor_limit(int connections) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  // The store, plugins, callbacks and the event bus need some of their own.
  const rlim_t wanted = static_cast<rlim_t>(connections) + 256;
  if (limit.rlim_cur >= wanted) return;
  limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? wanted : std::min(wanted, limit.rlim_max);
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur < wanted) {
    log::warn("open file limit is below max-connections",
              {{"limit", std::to_string(limit.rlim_cur)},
               {"max_connections", std::to_string(connections)}});
  }
}

}  // namespace

ConnectionPool::ConnectionPool(ConnectionLimits limits, SSL_CTX *tls, ServeRequest serve)
    : limits_(limits), tls_(tls), serve_request_(std::move(serve)) {
  raise_descriptor_limit(limits_.max_connections);
}

ConnectionPool::~ConnectionPool() {
  stop();
}

int ConnectionPool::admit(const std::string &address) {
  std::lock_guard lock(mutex_);
  if (draining_ || connections_ >= limits_.max_connections) return 503;
  int &mine = per_address_[address];
  if (mine >= limits_.max_per_address) return 429;
  ++mine;
  ++connections_;
  return 0;
}

void ConnectionPool::release(const std::string &address) {
  std::lock_guard lock(mutex_);
  --connections_;
  auto it = per_address_.find(address);
  if (it != per_address_.end() && --it->second <= 0) per_address_.erase(it);
}

void ConnectionPool::refuse(int fd, int status, const std::string &address) const {
  static std::atomic<Clock::rep> last_logged{0};
  const auto now = Clock::now().time_since_epoch().count();
  auto last = last_logged.load();
  if (now - last >= Clock::duration(kRefusalLogEvery).count() &&
      last_logged.compare_exchange_strong(last, now)) {
    log::warn("connection refused",
              {{"remote", address},
               {"reason", status == 429 ? "max-connections-per-address" : "max-connections"}});
  }
  // TLS clients would not understand a plain answer; they are just closed.
  if (!tls_) {
    httplib::Response res;
    if (status == 429) {
      send_error(res, Error(ErrorCode::ResourceExhausted,
                            fmt::format("too many connections from {} (at most {})", address,
                                        limits_.max_per_address)));
    } else {
      send_error(res, Error(ErrorCode::Unavailable,
                            fmt::format("too many connections (at most {})",
                                        limits_.max_connections)));
    }
    const std::string text = fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
        "Connection: close\r\n\r\n{}",
        status, status == 429 ? "Too Many Requests" : "Service Unavailable", res.body.size(),
        res.body);
    // Best effort and never waiting: the accept loop must not stall on it.
    (void)::send(fd, text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
  }
  ::close(fd);
}

void ConnectionPool::run(int listen_fd) {
  {
    // The threads kept ready start now, as httplib's pool did: the daemon's
    // thread count then stays put under ordinary use (tests read a fault's
    // threads off it), and the first connections wait for no thread start.
    std::lock_guard lock(mutex_);
    for (int i = 0; i < limits_.ready_threads; ++i) {
      try {
        std::thread([this] { worker(); }).detach();
        ++threads_;
      } catch (const std::system_error &) {
        break;  // more start on demand
      }
    }
  }
  running_ = true;
  while (!stop_requested_) {
    pollfd p{listen_fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, kAcceptPollMs);
    if (ready <= 0) continue;
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr *>(&addr), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      // Out of descriptors or memory: let connections end, then go on.
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    Connection c;
    c.fd = fd;
    int port = 0;
    ip_and_port(addr, c.address, port);
    if (const int status = admit(c.address)) {
      refuse(fd, status, c.address);
      continue;
    }
    // httplib writes headers and body separately; with Nagle on, the body
    // waits for the client's delayed ACK (~40 ms a response).
    const int on = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    dispatch(std::move(c));
  }

  // Drain: no new work; connections reading a request are cut off (their
  // reads end), answers being written go on (writes still work).
  std::unique_lock lock(mutex_);
  draining_ = true;
  for (const Connection &c : queue_) {
    ::close(c.fd);
    --connections_;
  }
  queue_.clear();
  per_address_.clear();
  for (ConnectionStream *s : open_)
    ::shutdown(s->socket(), SHUT_RD);
  work_cv_.notify_all();
  done_cv_.wait(lock, [this] { return threads_ == 0; });
  running_ = false;
}

void ConnectionPool::stop() {
  stop_requested_ = true;
}

void ConnectionPool::dispatch(Connection c) {
  std::lock_guard lock(mutex_);
  queue_.push_back(std::move(c));
  if (static_cast<std::size_t>(idle_) < queue_.size()) {
    try {
      std::thread([this] { worker(); }).detach();
      ++threads_;
    } catch (const std::system_error &) {
      // No thread to be had: the connection waits for one that frees up.
    }
  }
  work_cv_.notify_one();
}

void ConnectionPool::worker() {
  std::unique_lock lock(mutex_);
  for (;;) {
    ++idle_;
    const bool spare = threads_ > limits_.ready_threads;
    const auto has_work = [this] { return draining_ || !queue_.empty(); };
    if (spare) {
      work_cv_.wait_for(lock, kSpareThreadIdle, has_work);
    } else {
      work_cv_.wait(lock, has_work);
    }
    --idle_;
    if (queue_.empty()) {
      // Counted again: spares that timed out together must not take the
      // pool below the threads kept ready.
      if (draining_ || (spare && threads_ > limits_.ready_threads)) break;
      continue;
    }
    Connection c = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    serve(c);
    lock.lock();
  }
  --threads_;
  done_cv_.notify_all();
}

void ConnectionPool::serve(const Connection &c) {
  SSL *ssl = tls_ ? SSL_new(tls_) : nullptr;
  if (tls_ && !ssl) {
    ::close(c.fd);
    release(c.address);
    return;
  }
  {
    ConnectionStream stream(c.fd, ssl, limits_.write_timeout);
    {
      std::lock_guard lock(mutex_);
      open_.insert(&stream);
      if (draining_) stream.shut_down();
    }
    if (stream.handshake(Clock::now() + limits_.request_timeout)) {
      for (std::size_t left = limits_.keep_alive_max; left > 0 && !stop_requested_; --left) {
        if (!stream.wait_for_request(limits_.keep_alive_timeout)) break;
        stream.start_request(Clock::now() + limits_.request_timeout);
        bool closed = false;
        const bool served = serve_request_(stream, left == 1 || stop_requested_, closed);
        if (!stream.flush() || !served || closed || stream.read_failed()) break;
      }
    }
    std::lock_guard lock(mutex_);
    open_.erase(&stream);
  }
  release(c.address);
}

}  // namespace blade::server
