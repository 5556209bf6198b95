// The stub resolver dns_down points /etc/resolv.conf at: a UDP and a TCP
// socket on port 53 of a loopback address, served by two threads the
// object owns. A query for an allowed domain (or a name under one) is
// forwarded to the nameservers resolv.conf named before, and their answer
// relayed as it is; any other query is answered SERVFAIL at once, as a
// recursive server answers when it cannot reach the domain's servers: the
// C library reports it as a temporary failure (getaddrinfo: EAI_AGAIN),
// the same error an unreachable nameserver gives, without the wait. Over
// TCP (options use-vc, or an answer too big for UDP) glibc reports the
// same SERVFAIL as "no such name" (EAI_NONAME): the name fails either way.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "../../common/handles.hpp"

namespace blade::network {

struct Nameserver {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string text;  // as resolv.conf wrote it
};

// The nameservers a resolv.conf names, in order, at most 3 (as many as
// the C library uses); unreadable addresses are skipped.
std::vector<Nameserver> nameservers_in(std::string_view resolv_conf);

class StubResolver {
 public:
  // Binds the first free address of 127.66.76.1-9 (none of `upstreams`)
  // on port 53, UDP and TCP, and starts serving. Throws FailedPrecondition
  // when no address can be bound.
  StubResolver(std::vector<Nameserver> upstreams, std::vector<std::string> allowed);
  // Stops both threads and closes every socket.
  ~StubResolver();
  StubResolver(const StubResolver &) = delete;
  StubResolver &operator=(const StubResolver &) = delete;

  // The loopback address it listens on, e.g. "127.66.76.1".
  const std::string &address() const { return address_; }
  std::uint64_t forwarded() const { return forwarded_; }
  std::uint64_t denied() const { return denied_; }

 private:
  // Tells both threads to end and waits for them.
  void stop();
  void serve_udp();
  void serve_tcp();
  // The answer to one query over TCP: forwarded or denied.
  std::string answer_tcp(const std::string &query);
  bool allowed(const std::string &name) const;

  std::vector<Nameserver> upstreams_;
  std::vector<std::string> allowed_;
  std::string address_;
  plugins::UniqueFd udp_, tcp_, stop_;
  std::atomic<std::uint64_t> forwarded_{0}, denied_{0};
  std::thread udp_thread_, tcp_thread_;
};

}  // namespace blade::network
