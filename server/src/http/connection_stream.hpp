// One accepted connection as httplib's Stream, plain or TLS, over a
// non-blocking socket. What it adds to httplib's own SocketStream is a
// deadline per request: every read of a request's headers and body must end
// before it, so a client trickling a byte at a time (slowloris) is cut off
// after --read-timeout in total, not after --read-timeout between two bytes.
#pragma once

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <string>

#include <httplib.h>

namespace blade::server {

// `addr` as text (IPv4 dotted, IPv6 as inet_ntop writes it; an IPv4-mapped
// IPv6 address as IPv4, as httplib names it) and its port.
void ip_and_port(const sockaddr_storage &addr, std::string &ip, int &port);

class ConnectionStream : public httplib::Stream {
 public:
  using Clock = std::chrono::steady_clock;

  // Takes over `fd` (made non-blocking here) and `ssl` (may be null): both
  // are freed, and the socket closed, by the destructor.
  ConnectionStream(int fd, SSL *ssl, std::chrono::milliseconds write_timeout);
  ~ConnectionStream() override;
  ConnectionStream(const ConnectionStream &) = delete;
  ConnectionStream &operator=(const ConnectionStream &) = delete;

  // The TLS handshake, by `deadline`; true at once for a plain socket.
  bool handshake(Clock::time_point deadline);
  // Waits up to `idle` for a request's first byte; false when none came or
  // the client closed.
  bool wait_for_request(std::chrono::milliseconds idle);
  // Reads from here on must end by `deadline` (the request's headers and body).
  void start_request(Clock::time_point deadline) {
    read_deadline_ = deadline;
    read_failed_ = false;
  }
  // A read of this request failed: its deadline passed, or the socket did.
  // httplib then answers 400 and would wait on the connection for a next
  // request (the rest of a slow one); it must be closed instead.
  bool read_failed() const { return read_failed_; }
  // Ends the connection for both sides; unblocks a thread serving it.
  void shut_down() const;

  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char *ptr, size_t size) override;
  // Writes every byte (or fails): -1 past the write timeout or on error.
  ssize_t write(const char *ptr, size_t size) override;
  // Sends a response's header block still held for its body (a response
  // that had none after all: HEAD). Call when a request has been answered.
  bool flush();
  void get_remote_ip_and_port(std::string &ip, int &port) const override;
  void get_local_ip_and_port(std::string &ip, int &port) const override;
  socket_t socket() const override { return fd_; }

 private:
  // A connected socket's addresses never change, but httplib asks for them
  // on every request: each is asked of the kernel once.
  struct Address {
    bool known = false;
    std::string ip;
    int port = 0;
  };
  using AddressQuery = int (*)(int, sockaddr *, socklen_t *);
  void address(Address &cache, AddressQuery query, std::string &ip, int &port) const;

  // poll() for `events` until `deadline`; true when ready.
  bool wait(short events, Clock::time_point deadline) const;
  // One recv or SSL_read into buffer_; the bytes read, 0 at end, -1 on error.
  ssize_t fill();

  int fd_;
  SSL *ssl_;
  std::chrono::milliseconds write_timeout_;
  Clock::time_point read_deadline_ = Clock::now();
  bool read_failed_ = false;
  // httplib reads request lines a byte at a time.
  std::array<char, 4096> buffer_{};
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  // A header block waiting for its body (write()), and how much of it went.
  std::string held_;
  std::size_t held_sent_ = 0;
  // Served by one thread at a time, like the buffer.
  mutable Address remote_;
  mutable Address local_;
};

}  // namespace blade::server
