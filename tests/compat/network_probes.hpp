// What the network rows measure with, from the calling thread's network
// namespace (a NetworkWorld's; a socket belongs to the namespace its
// creating thread is in): whether a bind of a port fails, how long a TCP
// connect takes or whether it gets through at all, what a burst of numbered
// UDP datagrams looks like at the receiver, and the kernel's state read
// back with `tc` and `nft` (the test's instruments, never the code under
// test).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../support/child_process.hpp"
#include "../support/file_text.hpp"
#include "../support/temp_dir.hpp"

namespace blade::test::compat::probe {

using namespace std::chrono_literals;

// A socket fd closed at destruction.
class Socket {
 public:
  explicit Socket(int fd = -1) : fd_(fd) {}
  Socket(Socket &&o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Socket &operator=(Socket &&o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

inline sockaddr_in address(const std::string &ip, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1)
    throw std::invalid_argument("not an IPv4 address: " + ip);
  return a;
}

// A socket of `type` bound to ip:port (SO_REUSEADDR, so a port a probe used
// a moment ago binds again).
inline Socket bound(int type, const std::string &ip, std::uint16_t port) {
  Socket s(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  const int on = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  const sockaddr_in a = address(ip, port);
  if (s.get() < 0 || ::bind(s.get(), reinterpret_cast<const sockaddr *>(&a), sizeof a) != 0)
    throw std::runtime_error("bind " + ip + ":" + std::to_string(port) + ": " +
                             std::strerror(errno));
  return s;
}

// A TCP listener on ip:port; a connect completes against its backlog, no
// accept needed.
inline Socket listener(const std::string &ip, std::uint16_t port) {
  Socket s = bound(SOCK_STREAM, ip, port);
  if (::listen(s.get(), 64) != 0) throw std::runtime_error("listen: " + std::string(std::strerror(errno)));
  return s;
}

// What bind() of a new TCP socket on 0.0.0.0:port says: 0 or the errno.
inline int bind_errno(std::uint16_t port) {
  Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const sockaddr_in a = address("0.0.0.0", port);
  return ::bind(s.get(), reinterpret_cast<const sockaddr *>(&a), sizeof a) == 0 ? 0 : errno;
}

inline double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// How long a TCP connect to ip:port took (from from_ip:from_port when
// given), in ms; nullopt when it did not complete within `timeout` (or was
// refused). The connection is reset at once, so no TIME_WAIT keeps a fixed
// local port from the next probe.
inline std::optional<double> connect_ms(const std::string &ip, std::uint16_t port,
                                        std::chrono::milliseconds timeout,
                                        const std::string &from_ip = "",
                                        std::uint16_t from_port = 0) {
  Socket s = from_ip.empty() && from_port == 0
                 ? Socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0))
                 : bound(SOCK_STREAM, from_ip.empty() ? "0.0.0.0" : from_ip, from_port);
  const linger reset{1, 0};
  ::setsockopt(s.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  ::fcntl(s.get(), F_SETFL, O_NONBLOCK);
  const sockaddr_in to = address(ip, port);
  const auto start = std::chrono::steady_clock::now();
  if (::connect(s.get(), reinterpret_cast<const sockaddr *>(&to), sizeof to) != 0 &&
      errno != EINPROGRESS)
    return std::nullopt;
  pollfd p{s.get(), POLLOUT, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return std::nullopt;
  return ms_since(start);
}

// A connect that gets through within a second (a veth answers in well
// under a millisecond; a dropped SYN never).
inline bool connects(const std::string &ip, std::uint16_t port, const std::string &from_ip = "",
                     std::uint16_t from_port = 0) {
  return connect_ms(ip, port, 1000ms, from_ip, from_port).has_value();
}

// What a UDP receiver saw of a burst of numbered datagrams.
struct UdpTally {
  int sent = 0;
  int distinct = 0;    // numbers that arrived intact at least once
  int duplicates = 0;  // intact arrivals beyond the first of a number
  int overtaken = 0;   // arrivals numbered below one that arrived before
  int damaged = 0;     // arrivals whose payload is not what was sent
  std::string shown() const {
    return std::to_string(distinct) + "/" + std::to_string(sent) + " arrived, " +
           std::to_string(duplicates) + " duplicated, " + std::to_string(overtaken) +
           " overtaken, " + std::to_string(damaged) + " damaged";
  }
};

// A UDP socket on ip:port; what the datagrams sent to it (carrying `text`)
// looked like.
class UdpReceiver {
 public:
  UdpReceiver(const std::string &ip, std::uint16_t port, std::string text = "")
      : s_(bound(SOCK_DGRAM, ip, port)), text_(std::move(text)) {
    // Read only after a burst is sent: the buffer holds a whole burst
    // (FORCE, as root, past net.core.rmem_max), so none of it is lost here.
    const int big = 32 << 20;
    if (::setsockopt(s_.get(), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) != 0)
      ::setsockopt(s_.get(), SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  }
  // Reads what arrives until nothing did for `quiet`.
  UdpTally collect(int sent, std::chrono::milliseconds quiet = 300ms) {
    UdpTally t;
    t.sent = sent;
    std::set<std::uint32_t> seen;
    std::uint32_t highest = 0;
    bool any = false;
    char buf[2048];
    for (;;) {
      pollfd p{s_.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(quiet.count())) != 1) break;
      const ssize_t n = ::recv(s_.get(), buf, sizeof buf, 0);
      if (n <= 0) continue;
      const std::string got(buf, static_cast<std::size_t>(n));
      std::uint32_t seq = 0;
      if (got.size() < 4 || (std::memcpy(&seq, got.data(), 4), got != payload(seq, got.size(), text_))) {
        ++t.damaged;
        continue;
      }
      if (!seen.insert(seq).second) ++t.duplicates;
      if (any && seq < highest) ++t.overtaken;
      highest = std::max(highest, seq);
      any = true;
    }
    t.distinct = static_cast<int>(seen.size());
    return t;
  }

  // Datagram `seq`: its number, then a pattern of it up to `size` bytes
  // (with `text` after the number when given), so damage anywhere shows.
  static std::string payload(std::uint32_t seq, std::size_t size, const std::string &text = "") {
    std::string d(reinterpret_cast<const char *>(&seq), 4);
    d += text;
    while (d.size() < size)
      d += static_cast<char>('a' + (seq + d.size()) % 26);
    return d;
  }

 private:
  Socket s_;
  std::string text_;
};

// Sends datagrams 0..count-1 of `size` bytes (carrying `text`) to ip:port,
// from from_port when given, one every `gap`.
inline void send_udp(const std::string &ip, std::uint16_t port, int count,
                     std::uint16_t from_port = 0, std::chrono::microseconds gap = 200us,
                     const std::string &text = "", std::size_t size = 64) {
  Socket s = bound(SOCK_DGRAM, "0.0.0.0", from_port);
  const sockaddr_in to = address(ip, port);
  for (int i = 0; i < count; ++i) {
    const std::string d = UdpReceiver::payload(static_cast<std::uint32_t>(i), size, text);
    ::sendto(s.get(), d.data(), d.size(), 0, reinterpret_cast<const sockaddr *>(&to), sizeof to);
    std::this_thread::sleep_for(gap);
  }
}

// Where `k` of `n` draws of chance `p` falls but once in ~15,000 runs
// (normal approximation, 4 sigma, widened by 2 for small n): wide enough that
// a row is not flaky, narrow enough that a wrong percent (60 for 70 over 500
// draws) falls outside.
inline std::pair<int, int> bounds(int n, double p) {
  const double mean = n * p, sd = std::sqrt(n * p * (1 - p));
  return {static_cast<int>(std::floor(mean - 4 * sd - 2)),
          static_cast<int>(std::ceil(mean + 4 * sd + 2))};
}

// argv's stdout (no shell), run to its end.
inline std::string output_of(const std::vector<std::string> &argv) {
  TempDir t("compat-net");
  const auto log = t / "out";
  ChildProcess p(argv, {}, log.string());
  p.exit_code(30s);
  return read_text(log);
}

}  // namespace blade::test::compat::probe
