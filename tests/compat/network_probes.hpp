// What the network rows measure with, beyond the netem tests' instruments
// (tests/network/traffic.hpp: numbered UDP bursts and their tally, exact
// binomial bounds), all from the calling thread's network namespace (a
// socket belongs to the namespace its creating thread is in): whether a bind
// of a port fails, how long a TCP connect takes from a chosen source address
// and port or whether it gets through at all, whether datagrams carrying a
// given text arrive, and the kernel's state read back with `tc` and `nft`
// (the test's instruments, never the code under test).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "../network/traffic.hpp"
#include "../support/child_process.hpp"
#include "../support/file_text.hpp"
#include "../support/temp_dir.hpp"

namespace blade::test::compat::probe {

using namespace std::chrono_literals;
using net::bound_socket;
using net::connect_ms;
using net::Fd;

// A TCP listener on ip:port; a connect completes against its backlog, no
// accept needed.
inline Fd listener(const std::string &ip, std::uint16_t port) {
  Fd s = bound_socket(SOCK_STREAM, ip, port);
  if (::listen(s.get(), 64) != 0) throw net::sys_error("listen");
  return s;
}

// What bind() of a new TCP socket on 0.0.0.0:port says: 0 or the errno.
inline int bind_errno(std::uint16_t port) {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const sockaddr_in a = net::ipv4("0.0.0.0", port);
  return ::bind(s.get(), reinterpret_cast<const sockaddr *>(&a), sizeof a) == 0 ? 0 : errno;
}

// A connect that gets through within a second (a veth answers in well
// under a millisecond; a dropped SYN never).
inline bool connects(const std::string &ip, std::uint16_t port, const std::string &from_ip = "",
                     std::uint16_t from_port = 0) {
  return connect_ms(ip, port, 1000ms, from_ip, from_port).has_value();
}

// How many of `count` datagrams carrying `text`, sent to `receiver` (a UDP
// socket bound to ip:port) from a socket of the calling thread's namespace,
// it got within `quiet` of the last one.
inline int datagrams_through(const Fd &receiver, const std::string &ip, std::uint16_t port,
                             const std::string &text, int count,
                             std::chrono::milliseconds quiet = 300ms) {
  Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const sockaddr_in to = net::ipv4(ip, port);
  for (int i = 0; i < count; ++i)
    ::sendto(s.get(), text.data(), text.size(), 0, reinterpret_cast<const sockaddr *>(&to),
             sizeof to);
  int got = 0;
  char buf[2048];
  for (;;) {
    pollfd p{receiver.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(quiet.count())) != 1) break;
    const ssize_t n = ::recv(receiver.get(), buf, sizeof buf, 0);
    got +=
        n == static_cast<ssize_t>(text.size()) && std::memcmp(buf, text.data(), text.size()) == 0;
  }
  return got;
}

// argv's stdout and stderr (no shell), run to its end.
inline std::string output_of(const std::vector<std::string> &argv) {
  TempDir t("compat-net");
  const auto log = t / "out";
  ChildProcess p(argv, {}, log.string());
  p.exit_code(30s);
  return read_text(log);
}

}  // namespace blade::test::compat::probe
