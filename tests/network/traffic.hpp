// The instruments the netem tests and the network benchmark measure real
// traffic with, between two network namespaces of one kernel (a veth pair,
// tests/network/netns.hpp), so one CLOCK_MONOTONIC times both ends:
//  - TcpServer: an echo (or discard) server; round_trips() times TCP
//    connects and echo round trips to it, each over a fresh connection;
//    the discard mode counts the bytes it got, for a rate.
//  - UdpReceiver + send_udp(): numbered datagrams carrying their send time
//    and a payload pattern, so the receiver counts what was lost,
//    duplicated, overtaken (reordered) or damaged, and each datagram's
//    one-way latency.
//  - udp_snmp(): the Udp counters of the calling thread's namespace
//    (InCsumErrors: datagrams whose checksum failed, i.e. corrupted).
//  - binomial_bounds(): where a count of independent draws must fall.
// A socket belongs to the namespace its creating thread was in
// (EnterNetNs), whichever thread later serves it.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../../plugins/common/handles.hpp"

namespace blade::test::net {

// CLOCK_MONOTONIC in ns: the same clock in every namespace of the kernel.
inline std::int64_t mono_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

inline std::int64_t real_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

inline double ms_since(std::int64_t start_ns) {
  return static_cast<double>(mono_ns() - start_ns) / 1e6;
}

// The project's one owning descriptor (plugins/common/handles.hpp).
using Fd = blade::plugins::UniqueFd;

inline sockaddr_in ipv4(const std::string &ip, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1)
    throw std::runtime_error("not an IPv4 address: " + ip);
  return a;
}

inline std::uint16_t bound_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
  return ntohs(a.sin_port);
}

inline std::runtime_error sys_error(const std::string &what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

inline void set_int(int fd, int level, int name, int value) {
  ::setsockopt(fd, level, name, &value, sizeof value);
}

// A TCP server on ip:port (0: any free port) in the calling thread's
// namespace, served by a thread of its own until destruction: Echo sends
// every byte back, Discard counts them.
class TcpServer {
 public:
  enum class Mode { Echo, Discard };

  TcpServer(const std::string &ip, std::uint16_t port, Mode mode = Mode::Echo)
      : mode_(mode), listener_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    if (!listener_) throw sys_error("socket");
    set_int(listener_.get(), SOL_SOCKET, SO_REUSEADDR, 1);
    const sockaddr_in a = ipv4(ip, port);
    if (::bind(listener_.get(), reinterpret_cast<const sockaddr *>(&a), sizeof a) != 0)
      throw sys_error("bind " + ip + ":" + std::to_string(port));
    if (::listen(listener_.get(), 64) != 0) throw sys_error("listen");
    port_ = bound_port(listener_.get());
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw sys_error("pipe");
    stop_r_ = Fd(p[0]);
    stop_w_ = Fd(p[1]);
    thread_ = std::thread([this] { serve(); });
  }
  ~TcpServer() {
    const char x = 0;
    (void)!::write(stop_w_.get(), &x, 1);
    thread_.join();
  }
  TcpServer(const TcpServer &) = delete;
  TcpServer &operator=(const TcpServer &) = delete;

  std::uint16_t port() const { return port_; }
  // Bytes received on every connection so far (Discard; Echo counts too).
  std::uint64_t bytes() const { return bytes_.load(); }

 private:
  void serve() {
    std::vector<Fd> conns;
    std::vector<char> buf(64 * 1024);
    for (;;) {
      std::vector<pollfd> fds = {{stop_r_.get(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
      for (const Fd &c : conns)
        fds.push_back({c.get(), POLLIN, 0});
      if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;
      if (fds[0].revents) return;
      for (std::size_t i = 2; i < fds.size(); ++i) {
        if (!fds[i].revents) continue;
        const ssize_t n = ::recv(fds[i].fd, buf.data(), buf.size(), 0);
        if (n <= 0) {
          conns[i - 2].reset();
          continue;
        }
        bytes_ += static_cast<std::uint64_t>(n);
        if (mode_ == Mode::Echo)
          (void)!::send(fds[i].fd, buf.data(), static_cast<std::size_t>(n), MSG_NOSIGNAL);
      }
      conns.erase(std::remove_if(conns.begin(), conns.end(), [](const Fd &c) { return !c; }),
                  conns.end());
      if (fds[1].revents) {
        Fd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (c) {
          set_int(c.get(), IPPROTO_TCP, TCP_NODELAY, 1);
          conns.push_back(std::move(c));
        }
      }
    }
  }

  Mode mode_;
  Fd listener_;
  Fd stop_r_, stop_w_;
  std::uint16_t port_ = 0;
  std::atomic<std::uint64_t> bytes_{0};
  std::thread thread_;
};

// Waits for `fd` to be ready for `events` until `deadline_ns` (mono_ns).
inline bool wait_fd(int fd, short events, std::int64_t deadline_ns) {
  for (;;) {
    const std::int64_t left = deadline_ns - mono_ns();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left / 1'000'000 + 1));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

// One round trip over a fresh connection: how long the connect took (SYN
// out, SYN-ACK back) and how long 32 bytes took to come back echoed.
// ip:port as a socket address of its family (IPv4 or IPv6); `len` gets
// its size. Throws for text that is neither.
inline sockaddr_storage sock_address(const std::string &ip, std::uint16_t port,
                                     socklen_t &len) {
  sockaddr_storage ss{};
  auto *v4 = reinterpret_cast<sockaddr_in *>(&ss);
  auto *v6 = reinterpret_cast<sockaddr_in6 *>(&ss);
  if (::inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof *v4;
  } else if (::inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof *v6;
  } else {
    throw std::runtime_error("not an IP address: " + ip);
  }
  return ss;
}

// A socket of `type` bound to ip:port (port 0: the kernel picks), with
// SO_REUSEADDR, in the calling thread's namespace.
inline Fd bound_socket(int type, const std::string &ip, std::uint16_t port = 0) {
  socklen_t len = 0;
  const sockaddr_storage ss = sock_address(ip, port, len);
  Fd s(::socket(ss.ss_family, type | SOCK_CLOEXEC, 0));
  if (!s) throw sys_error("socket");
  set_int(s.get(), SOL_SOCKET, SO_REUSEADDR, 1);
  if (::bind(s.get(), reinterpret_cast<const sockaddr *>(&ss), len) != 0)
    throw sys_error("bind " + ip + ":" + std::to_string(port));
  return s;
}

// Connects the non-blocking socket `fd` to `to`: whether the connection
// completed before `deadline_ns` (a dropped SYN never does; a refusal is
// false at once).
inline bool connect_within(int fd, const sockaddr *to, socklen_t len, std::int64_t deadline_ns) {
  if (::connect(fd, to, len) == 0) return true;
  if (errno != EINPROGRESS) return false;
  if (!wait_fd(fd, POLLOUT, deadline_ns)) return false;
  int err = 0;
  socklen_t err_len = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len);
  return err == 0;
}

// How long a TCP connect to ip:port (IPv4 or IPv6) took, from
// from_ip:from_port when given, in ms; nullopt when it did not complete
// within `timeout` or was refused. Closed with a reset, so no TIME_WAIT
// keeps a fixed local port from the next probe.
inline std::optional<double> connect_ms(const std::string &ip, std::uint16_t port,
                                        std::chrono::milliseconds timeout,
                                        const std::string &from_ip = "",
                                        std::uint16_t from_port = 0) {
  socklen_t len = 0;
  const sockaddr_storage to = sock_address(ip, port, len);
  Fd s = from_ip.empty() && from_port == 0
             ? Fd(::socket(to.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0))
             : bound_socket(SOCK_STREAM,
                            from_ip.empty() ? (to.ss_family == AF_INET ? "0.0.0.0" : "::")
                                            : from_ip,
                            from_port);
  if (!s) throw sys_error("socket");
  const linger reset{1, 0};
  ::setsockopt(s.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  ::fcntl(s.get(), F_SETFL, O_NONBLOCK);
  const std::int64_t start = mono_ns();
  if (!connect_within(s.get(), reinterpret_cast<const sockaddr *>(&to), len,
                      start + timeout.count() * 1'000'000LL))
    return std::nullopt;
  return ms_since(start);
}

struct RoundTrip {
  double connect_ms = 0;
  double echo_ms = 0;
};

// A fresh connection from the calling thread's namespace to ip:port (from
// `local_port` when given) timed, then one echo timed; nullopt when either
// did not finish within `timeout`. Closed with a reset, so no TIME_WAIT
// keeps the local port from the next sample.
inline std::optional<RoundTrip> round_trip(
    const std::string &ip, std::uint16_t port, std::uint16_t local_port = 0,
    std::chrono::milliseconds timeout = std::chrono::seconds(3)) {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s) throw sys_error("socket");
  set_int(s.get(), IPPROTO_TCP, TCP_NODELAY, 1);
  const linger hard{1, 0};
  ::setsockopt(s.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  if (local_port) {
    set_int(s.get(), SOL_SOCKET, SO_REUSEADDR, 1);
    const sockaddr_in me = ipv4("0.0.0.0", local_port);
    if (::bind(s.get(), reinterpret_cast<const sockaddr *>(&me), sizeof me) != 0)
      throw sys_error("bind local port " + std::to_string(local_port));
  }
  const std::int64_t deadline = mono_ns() + timeout.count() * 1'000'000LL;
  const sockaddr_in to = ipv4(ip, port);
  RoundTrip rt;
  std::int64_t t0 = mono_ns();
  if (!connect_within(s.get(), reinterpret_cast<const sockaddr *>(&to), sizeof to, deadline))
    return std::nullopt;
  rt.connect_ms = ms_since(t0);
  char out[32], in[32];
  std::memset(out, 'e', sizeof out);
  t0 = mono_ns();
  if (::send(s.get(), out, sizeof out, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof out))
    return std::nullopt;
  std::size_t got = 0;
  while (got < sizeof in) {
    if (!wait_fd(s.get(), POLLIN, deadline)) return std::nullopt;
    const ssize_t n = ::recv(s.get(), in + got, sizeof in - got, 0);
    if (n <= 0) return std::nullopt;
    got += static_cast<std::size_t>(n);
  }
  rt.echo_ms = ms_since(t0);
  return rt;
}

// `n` round trips; throws when one fails (a test of delay wants every one).
inline std::vector<RoundTrip> round_trips(const std::string &ip, std::uint16_t port, int n,
                                          std::uint16_t local_port = 0) {
  std::vector<RoundTrip> out;
  for (int i = 0; i < n; ++i) {
    auto rt = round_trip(ip, port, local_port);
    if (!rt) throw std::runtime_error("no TCP round trip to " + ip + ":" + std::to_string(port));
    out.push_back(*rt);
  }
  return out;
}

// `n` echo round trips over one connection to ip:port (ms each): the
// latency of a packet through the path and back, without a handshake.
inline std::vector<double> echo_round_trips(
    const std::string &ip, std::uint16_t port, int n,
    std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) throw sys_error("socket");
  set_int(s.get(), IPPROTO_TCP, TCP_NODELAY, 1);
  const sockaddr_in to = ipv4(ip, port);
  if (::connect(s.get(), reinterpret_cast<const sockaddr *>(&to), sizeof to) != 0)
    throw sys_error("connect " + ip);
  std::vector<double> out;
  char out_buf[32], in_buf[32];
  std::memset(out_buf, 'e', sizeof out_buf);
  for (int i = 0; i < n; ++i) {
    const std::int64_t t0 = mono_ns();
    const std::int64_t deadline = t0 + timeout.count() * 1'000'000LL;
    if (::send(s.get(), out_buf, sizeof out_buf, MSG_NOSIGNAL) !=
        static_cast<ssize_t>(sizeof out_buf))
      throw sys_error("send");
    std::size_t got = 0;
    while (got < sizeof in_buf) {
      if (!wait_fd(s.get(), POLLIN, deadline)) throw std::runtime_error("no echo within timeout");
      const ssize_t r = ::recv(s.get(), in_buf + got, sizeof in_buf - got, 0);
      if (r <= 0) throw std::runtime_error("echo connection closed");
      got += static_cast<std::size_t>(r);
    }
    out.push_back(ms_since(t0));
  }
  return out;
}

inline double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[(v.size() - 1) / 2];
}

inline double median_connect(const std::vector<RoundTrip> &v) {
  std::vector<double> x;
  for (const auto &r : v)
    x.push_back(r.connect_ms);
  return median_of(x);
}

inline double median_echo(const std::vector<RoundTrip> &v) {
  std::vector<double> x;
  for (const auto &r : v)
    x.push_back(r.echo_ms);
  return median_of(x);
}

// ---- UDP ----

// What a numbered datagram carries: its number, its send time (monotonic,
// and wall clock to compare with the kernel's receive stamp), then a
// pattern derived from the number, so damage anywhere in it shows.
struct UdpHeader {
  std::uint32_t seq;
  std::uint32_t magic;
  std::int64_t sent_ns;
  std::int64_t sent_real_ns;
};
inline constexpr std::uint32_t kUdpMagic = 0xb1ade14u;

inline unsigned char pattern_byte(std::uint32_t seq, std::size_t i) {
  return static_cast<unsigned char>((seq * 131u + i * 7u) & 0xff);
}

// What the receiver saw of a burst.
struct UdpTally {
  int sent = 0;        // datagrams the sender sent
  int distinct = 0;    // numbers received at least once, intact
  int duplicates = 0;  // extra copies of a number already received
  int late = 0;        // arrived after a higher number had: overtaken
  int damaged = 0;     // arrived with a wrong pattern (checksum passed)
  // Of each first copy: sent until the kernel stamped its arrival (not
  // until this process read it, which a busy host can hold up).
  std::vector<double> one_way_ms;
  std::vector<std::int64_t> sent_at_ns;  // its send time (monotonic), same order
  int lost() const { return sent - distinct; }
};

// A UDP socket on ip:port (0: any) in the calling thread's namespace whose
// thread records every numbered datagram until collect().
class UdpReceiver {
 public:
  explicit UdpReceiver(const std::string &ip, std::uint16_t port = 0)
      : sock_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    if (!sock_) throw sys_error("socket");
    // Room for a whole burst even when this thread falls behind (UML is
    // slow): a drop at the receiver would count as netem's loss.
    set_int(sock_.get(), SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20);
    set_int(sock_.get(), SOL_SOCKET, SO_TIMESTAMPNS, 1);
    const sockaddr_in a = ipv4(ip, port);
    if (::bind(sock_.get(), reinterpret_cast<const sockaddr *>(&a), sizeof a) != 0)
      throw sys_error("bind udp " + ip);
    port_ = bound_port(sock_.get());
    thread_ = std::thread([this] { receive(); });
  }
  ~UdpReceiver() {
    stop_ = true;
    thread_.join();
  }
  UdpReceiver(const UdpReceiver &) = delete;
  UdpReceiver &operator=(const UdpReceiver &) = delete;

  std::uint16_t port() const { return port_; }

  // Starts a new count (what came before is forgotten).
  void reset() {
    std::lock_guard lock(mu_);
    tally_ = UdpTally{};
    seen_.clear();
    max_seq_ = -1;
  }

  // The count once nothing arrived for `quiet`: every copy still in flight
  // (delayed, duplicated) is in.
  UdpTally collect(int sent, std::chrono::milliseconds quiet = std::chrono::milliseconds(400)) {
    for (;;) {
      const std::int64_t last = last_ns_.load();
      std::this_thread::sleep_for(quiet);
      if (last_ns_.load() == last) break;
    }
    std::lock_guard lock(mu_);
    UdpTally t = tally_;
    t.sent = sent;
    return t;
  }

  // Everything received so far, without waiting.
  UdpTally peek() {
    std::lock_guard lock(mu_);
    return tally_;
  }

 private:
  void receive() {
    std::vector<unsigned char> buf(65536);
    while (!stop_) {
      pollfd p{sock_.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      iovec iov{buf.data(), buf.size()};
      alignas(cmsghdr) char control[256];
      msghdr m{};
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      m.msg_control = control;
      m.msg_controllen = sizeof control;
      const ssize_t n = ::recvmsg(sock_.get(), &m, 0);
      const std::int64_t now = mono_ns();
      if (n < static_cast<ssize_t>(sizeof(UdpHeader))) continue;
      UdpHeader h{};
      std::memcpy(&h, buf.data(), sizeof h);
      std::optional<std::int64_t> stamped;  // the kernel's receive time (wall clock)
      for (cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
          timespec ts{};
          std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
          stamped = ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
        }
      }
      bool intact = h.magic == kUdpMagic;
      for (std::size_t i = sizeof h; intact && i < static_cast<std::size_t>(n); ++i)
        intact = buf[i] == pattern_byte(h.seq, i);
      std::lock_guard lock(mu_);
      last_ns_ = now;
      if (!intact) {
        ++tally_.damaged;
        continue;
      }
      if (!seen_.emplace(h.seq, true).second) {
        ++tally_.duplicates;
        continue;
      }
      ++tally_.distinct;
      if (static_cast<std::int64_t>(h.seq) < max_seq_) ++tally_.late;
      max_seq_ = std::max<std::int64_t>(max_seq_, h.seq);
      tally_.one_way_ms.push_back(
          static_cast<double>(stamped ? *stamped - h.sent_real_ns : now - h.sent_ns) / 1e6);
      tally_.sent_at_ns.push_back(h.sent_ns);
    }
  }

  Fd sock_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> last_ns_{0};
  std::mutex mu_;
  UdpTally tally_;
  std::map<std::uint32_t, bool> seen_;
  std::int64_t max_seq_ = -1;
  std::thread thread_;
};

// Sends `count` numbered datagrams of `size` bytes to ip:port from the
// calling thread's namespace (from `local_port` when given), one every
// `gap` (absolute deadlines, so a slow send does not stretch the burst),
// numbered from `first`, or until `*stop` is set. Returns how many the
// kernel took.
inline int send_udp(const std::string &ip, std::uint16_t port, int count,
                    std::chrono::microseconds gap, std::size_t size = 512, std::uint32_t first = 0,
                    std::uint16_t local_port = 0, const std::atomic<bool> *stop = nullptr) {
  Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) throw sys_error("socket");
  if (local_port) {
    const sockaddr_in me = ipv4("0.0.0.0", local_port);
    if (::bind(s.get(), reinterpret_cast<const sockaddr *>(&me), sizeof me) != 0)
      throw sys_error("bind local port " + std::to_string(local_port));
  }
  const sockaddr_in to = ipv4(ip, port);
  if (::connect(s.get(), reinterpret_cast<const sockaddr *>(&to), sizeof to) != 0)
    throw sys_error("connect udp");
  size = std::max(size, sizeof(UdpHeader));
  std::vector<unsigned char> buf(size);
  timespec next{};
  ::clock_gettime(CLOCK_MONOTONIC, &next);
  int sent = 0;
  for (int i = 0; i < count && !(stop && *stop); ++i) {
    const std::uint32_t seq = first + static_cast<std::uint32_t>(i);
    for (std::size_t b = sizeof(UdpHeader); b < size; ++b)
      buf[b] = pattern_byte(seq, b);
    const UdpHeader h{seq, kUdpMagic, mono_ns(), real_ns()};
    std::memcpy(buf.data(), &h, sizeof h);
    if (::send(s.get(), buf.data(), size, 0) == static_cast<ssize_t>(size)) ++sent;
    next.tv_nsec += static_cast<long>(gap.count()) * 1000L;
    while (next.tv_nsec >= 1'000'000'000L) {
      next.tv_nsec -= 1'000'000'000L;
      ++next.tv_sec;
    }
    ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr);
  }
  return sent;
}

// The "Udp:" counters of the calling thread's namespace (/proc/thread-self:
// /proc/self/net would be the thread group leader's namespace).
inline std::map<std::string, long long> udp_snmp() {
  std::ifstream in("/proc/thread-self/net/snmp");
  std::string names, values, line;
  while (std::getline(in, line)) {
    if (line.rfind("Udp: ", 0) != 0) continue;
    if (names.empty())
      names = line;
    else
      values = line;
  }
  std::map<std::string, long long> out;
  std::istringstream n(names), v(values);
  std::string name, tag;
  n >> tag;
  v >> tag;
  long long x = 0;
  while (n >> name && v >> x)
    out[name] = x;
  return out;
}

// The smallest and largest count of successes in `n` independent draws of
// probability `p` that hold `confidence` of the mass between them (exact,
// from the binomial distribution, each tail (1 - confidence) / 2).
inline std::pair<int, int> binomial_bounds(int n, double p, double confidence = 0.99) {
  const double tail = (1 - confidence) / 2;
  if (p <= 0) return {0, 0};
  if (p >= 1) return {n, n};
  double cdf = 0;
  int lo = -1, hi = n;
  for (int k = 0; k <= n; ++k) {
    const double log_pmf = std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0) +
                           k * std::log(p) + (n - k) * std::log1p(-p);
    cdf += std::exp(log_pmf);
    if (lo < 0 && cdf >= tail) lo = k;
    if (cdf >= 1 - tail) {
      hi = k;
      break;
    }
  }
  return {lo, hi};
}

}  // namespace blade::test::net
