#include "connection_stream.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

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
  const auto deadline = Clock::now() + idle;
  if (!wait(POLLIN, deadline)) return false;
  if (ssl_) {
    // Readable may mean closed: peek, so an idle close is not a request.
    char byte;
    return ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
  }
  // The request's first bytes are read into the buffer at once, rather
  // than peeked at and then read again; none means the client closed.
  for (;;) {
    const ssize_t n = ::recv(fd_, buffer_.data(), buffer_.size(), MSG_DONTWAIT);
    if (n > 0) {
      begin_ = 0;
      end_ = static_cast<std::size_t>(n);
      return true;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
    if (!wait(POLLIN, deadline)) return false;
  }
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

namespace {

// httplib writes a response's header block, then its body, in two writes:
// a header block announcing a body is held and goes out with it, in one
// send (one segment, one wake-up of the client) instead of two.
bool announces_body(std::string_view data) {
  if (!data.starts_with("HTTP/1.") || !data.ends_with("\r\n\r\n")) return false;
  constexpr std::string_view kLength = "\r\nContent-Length: ";
  const auto at = data.find(kLength);
  // No leading zeros: a length starting with 0 is 0.
  return at != std::string_view::npos && at + kLength.size() < data.size() &&
         data[at + kLength.size()] != '0';
}

}  // namespace

ssize_t ConnectionStream::write(const char *ptr, size_t size) {
  const auto deadline = Clock::now() + write_timeout_;
  if (ssl_) {
    for (;;) {
      const int n = SSL_write(ssl_, ptr, static_cast<int>(std::min<size_t>(size, 1 << 30)));
      if (n > 0) return n;
      const int err = SSL_get_error(ssl_, n);
      const short want =
          err == SSL_ERROR_WANT_WRITE ? POLLOUT : (err == SSL_ERROR_WANT_READ ? POLLIN : 0);
      if (want == 0 || !wait(want, deadline)) return -1;
    }
  }
  if (held_.empty() && announces_body({ptr, size})) {
    held_.assign(ptr, size);
    return static_cast<ssize_t>(size);
  }
  // The held header block first, then these bytes, all of them.
  std::size_t done = 0;
  while (held_sent_ < held_.size() || done < size) {
    std::array<iovec, 2> parts{};
    std::size_t count = 0;
    if (held_sent_ < held_.size())
      parts[count++] = {held_.data() + held_sent_, held_.size() - held_sent_};
    if (done < size) parts[count++] = {const_cast<char *>(ptr) + done, size - done};
    msghdr message{};
    message.msg_iov = parts.data();
    message.msg_iovlen = count;
    // MSG_NOSIGNAL: a client gone mid-response is an error here, not SIGPIPE.
    const ssize_t n = ::sendmsg(fd_, &message, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      if (!wait(POLLOUT, deadline)) return -1;
      continue;
    }
    auto sent = static_cast<std::size_t>(n);
    const std::size_t from_held = std::min(sent, held_.size() - held_sent_);
    held_sent_ += from_held;
    done += sent - from_held;
  }
  held_.clear();
  held_sent_ = 0;
  return static_cast<ssize_t>(size);
}

bool ConnectionStream::flush() {
  return held_.empty() || write(nullptr, 0) >= 0;
}

void ConnectionStream::address(Address &cache, AddressQuery query, std::string &ip,
                               int &port) const {
  if (!cache.known) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (query(fd_, reinterpret_cast<sockaddr *>(&addr), &len) != 0) return;
    ip_and_port(addr, cache.ip, cache.port);
    cache.known = true;
  }
  ip = cache.ip;
  port = cache.port;
}

void ConnectionStream::get_remote_ip_and_port(std::string &ip, int &port) const {
  address(remote_, ::getpeername, ip, port);
}

void ConnectionStream::get_local_ip_and_port(std::string &ip, int &port) const {
  address(local_, ::getsockname, ip, port);
}

}  // namespace blade::server
