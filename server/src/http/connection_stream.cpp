#include "connection_stream.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace blade::server {

void ip_and_port(const sockaddr_storage &addr, std::string &ip, int &port) {
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto &in = reinterpret_cast<const sockaddr_in &>(addr);
    inet_ntop(AF_INET, &in.sin_addr, text, sizeof text);
    port = ntohs(in.sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto &in6 = reinterpret_cast<const sockaddr_in6 &>(addr);
    // An IPv4 client of a dual-stack socket is named as IPv4, as httplib does.
    if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
      inet_ntop(AF_INET, &in6.sin6_addr.s6_addr[12], text, sizeof text);
    } else {
      inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
    }
    port = ntohs(in6.sin6_port);
  }
  ip = text;
}

ConnectionStream::ConnectionStream(int fd, SSL *ssl, std::chrono::milliseconds write_timeout)
    : fd_(fd), ssl_(ssl), write_timeout_(write_timeout) {
  const int flags = fcntl(fd_, F_GETFL, 0);
  if (flags >= 0) fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
  if (ssl_) SSL_set_fd(ssl_, fd_);
}

ConnectionStream::~ConnectionStream() {
  if (ssl_) {
    // A close_notify when the peer can take it; never waits.
    SSL_shutdown(ssl_);
    SSL_free(ssl_);
  }
  ::shutdown(fd_, SHUT_RDWR);
  ::close(fd_);
}

void ConnectionStream::shut_down() const {
  ::shutdown(fd_, SHUT_RDWR);
}

bool ConnectionStream::wait(short events, Clock::time_point deadline) const {
  for (;;) {
    // Rounded up: poll() must not wake just before the deadline.
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000 * 3600)));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

bool ConnectionStream::handshake(Clock::time_point deadline) {
  if (!ssl_) return true;
  for (;;) {
    const int r = SSL_accept(ssl_);
    if (r == 1) return true;
    const int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ) {
      if (!wait(POLLIN, deadline)) return false;
    } else if (err == SSL_ERROR_WANT_WRITE) {
      if (!wait(POLLOUT, deadline)) return false;
    } else {
      return false;
    }
  }
}

bool ConnectionStream::wait_for_request(std::chrono::milliseconds idle) {
  if (begin_ < end_ || (ssl_ && SSL_pending(ssl_) > 0)) return true;
  if (!wait(POLLIN, Clock::now() + idle)) return false;
  // Readable may mean closed: peek, so an idle close is not a request.
  char byte;
  const ssize_t n = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n > 0;
}

bool ConnectionStream::is_readable() const {
  if (begin_ < end_ || (ssl_ && SSL_pending(ssl_) > 0)) return true;
  return wait(POLLIN, read_deadline_);
}

bool ConnectionStream::is_writable() const {
  if (!wait(POLLOUT, Clock::now() + write_timeout_)) return false;
  // Writable but closed by the peer (an event-stream client that left):
  // a peek at the end of the stream says so before a write fails.
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, 0) > 0) {
    if (p.revents & (POLLHUP | POLLERR)) return false;
    char byte;
    if (::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0) return false;
  }
  return true;
}

ssize_t ConnectionStream::fill() {
  for (;;) {
    if (ssl_) {
      const int n = SSL_read(ssl_, buffer_.data(), static_cast<int>(buffer_.size()));
      if (n > 0) return n;
      const int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_ZERO_RETURN) return 0;
      const short want =
          err == SSL_ERROR_WANT_READ ? POLLIN : (err == SSL_ERROR_WANT_WRITE ? POLLOUT : 0);
      if (want == 0 || !wait(want, read_deadline_)) return -1;
      continue;
    }
    const ssize_t n = ::recv(fd_, buffer_.data(), buffer_.size(), 0);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    if (!wait(POLLIN, read_deadline_)) return -1;
  }
}

ssize_t ConnectionStream::read(char *ptr, size_t size) {
  if (begin_ == end_) {
    // Past the deadline nothing more is read, however fast it would come.
    if (Clock::now() >= read_deadline_) {
      read_failed_ = true;
      return -1;
    }
    const ssize_t n = fill();
    if (n < 0) read_failed_ = true;
    if (n <= 0) return n;
    begin_ = 0;
    end_ = static_cast<std::size_t>(n);
  }
  const std::size_t count = std::min(size, end_ - begin_);
  std::memcpy(ptr, buffer_.data() + begin_, count);
  begin_ += count;
  return static_cast<ssize_t>(count);
}

ssize_t ConnectionStream::write(const char *ptr, size_t size) {
  const auto deadline = Clock::now() + write_timeout_;
  for (;;) {
    if (ssl_) {
      const int n = SSL_write(ssl_, ptr, static_cast<int>(std::min<size_t>(size, 1 << 30)));
      if (n > 0) return n;
      const int err = SSL_get_error(ssl_, n);
      const short want =
          err == SSL_ERROR_WANT_WRITE ? POLLOUT : (err == SSL_ERROR_WANT_READ ? POLLIN : 0);
      if (want == 0 || !wait(want, deadline)) return -1;
      continue;
    }
    // MSG_NOSIGNAL: a client gone mid-response is an error here, not SIGPIPE.
    const ssize_t n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    if (!wait(POLLOUT, deadline)) return -1;
  }
}

void ConnectionStream::get_remote_ip_and_port(std::string &ip, int &port) const {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getpeername(fd_, reinterpret_cast<sockaddr *>(&addr), &len) == 0)
    ip_and_port(addr, ip, port);
}

void ConnectionStream::get_local_ip_and_port(std::string &ip, int &port) const {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd_, reinterpret_cast<sockaddr *>(&addr), &len) == 0)
    ip_and_port(addr, ip, port);
}

}  // namespace blade::server
