// Slow and idle clients against a real bladed: a request's headers and body
// have a deadline in all, connections are capped per client address, and
// while hundreds of connections trickle bytes or sit idle, health and an
// authenticated read are still answered fast. Every loop here is bounded by
// a count and a time, and only 127.0.0.1 is spoken to.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bladed_process.hpp"

using namespace blade::test;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

// A TCP connection to 127.0.0.1:port; -1 when it cannot be made.
int connect_local(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// True when the peer has closed `fd` (or reset it); never blocks.
bool closed_by_peer(int fd) {
  char byte;
  const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

// Waits up to `limit` for `fd` to be closed by the peer, reading (and
// dropping) what comes before; true when it was.
bool closed_within(int fd, std::chrono::milliseconds limit) {
  const auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buffer[4096];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return true;
  }
  return false;
}

double p99_ms(std::vector<double> samples) {
  REQUIRE(!samples.empty());
  std::sort(samples.begin(), samples.end());
  const auto rank = static_cast<std::size_t>(std::ceil(0.99 * samples.size()));
  return samples[std::max<std::size_t>(rank, 1) - 1];
}

// Holds `slow` connections that send one header byte every 2 s and `idle`
// ones that send nothing, from 127.0.0.1, on a thread of its own; one the
// daemon closes is opened again (as an attacker would), within a budget.
class Attack {
 public:
  Attack(int port, int slow, int idle) : port_(port) {
    for (int i = 0; i < slow; ++i)
      slow_.push_back(open_slow());
    for (int i = 0; i < idle; ++i)
      idle_.push_back(connect_local(port_));
    thread_ = std::thread([this] { loop(); });
  }
  ~Attack() {
    stop_ = true;
    thread_.join();
    for (int fd : slow_)
      if (fd >= 0) ::close(fd);
    for (int fd : idle_)
      if (fd >= 0) ::close(fd);
  }
  int opened() const { return opened_.load(); }
  int failed_connects() const { return failed_.load(); }

 private:
  int open_slow() {
    const int fd = connect_local(port_);
    if (fd < 0) {
      ++failed_;
      return fd;
    }
    ++opened_;
    (void)::send(fd, "G", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    return fd;
  }

  void loop() {
    // At most 60 s and 30 rounds, whatever the test does.
    const auto end = Clock::now() + std::chrono::seconds(60);
    for (int round = 0; round < 30 && !stop_ && Clock::now() < end; ++round) {
      for (int i = 0; i < 20 && !stop_; ++i)  // 2 s, in steps stop_ can cut
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      for (int &fd : slow_) {
        if (fd >= 0 && !closed_by_peer(fd) &&
            ::send(fd, "X", 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
          continue;
        if (fd >= 0) ::close(fd);
        fd = reconnects_++ < kReconnects ? open_slow() : -1;
      }
      for (int &fd : idle_) {
        if (fd >= 0 && !closed_by_peer(fd)) continue;
        if (fd >= 0) ::close(fd);
        fd = reconnects_++ < kReconnects ? connect_local(port_) : -1;
        if (fd >= 0) ++opened_;
      }
    }
  }

  static constexpr int kReconnects = 4000;
  const int port_;
  std::vector<int> slow_;
  std::vector<int> idle_;
  std::atomic<bool> stop_{false};
  std::atomic<int> opened_{0};
  std::atomic<int> failed_{0};
  int reconnects_ = 0;
  std::thread thread_;
};

}  // namespace

TEST_CASE("a request's headers must arrive within --read-timeout in all, not per byte") {
  BladedProcess d(with_test_plugins({}, {"--read-timeout", "2"}));
  const int fd = connect_local(d.port);
  REQUIRE(fd >= 0);
  const std::string request = "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ";
  REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size()));
  // A byte every 300 ms: each well inside any per-read timeout.
  const auto start = Clock::now();
  bool closed = false;
  for (int i = 0; i < 40 && !closed; ++i) {
    closed = closed_within(fd, std::chrono::milliseconds(300)) ||
             ::send(fd, "a", 1, MSG_NOSIGNAL) != 1;
  }
  const auto took = std::chrono::duration<double>(Clock::now() - start).count();
  ::close(fd);
  CHECK(closed);
  MESSAGE("a trickling request was cut off after " << took << " s (read-timeout 2 s)");
  CHECK(took < 4.0);
  CHECK(d.client().Get("/v1/health")->status == 200);
}

TEST_CASE("connections per client address are capped: the next one gets 429, others go on") {
  BladedProcess d(with_test_plugins({}, {"--max-connections-per-address", "4"}));
  std::vector<int> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(connect_local(d.port));
    REQUIRE(held.back() >= 0);
  }
  // The daemon counts a connection once it accepts it; give it the moment.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto c = d.client();
  auto refused = c.Get("/v1/health");
  REQUIRE(refused);
  CHECK(refused->status == 429);
  CHECK(json::parse(refused->body)["code"] == "RESOURCE_EXHAUSTED");
  CHECK(refused->body.find("too many connections from 127.0.0.1") != std::string::npos);

  ::close(held.back());
  held.pop_back();
  int status = 0;
  const auto end = Clock::now() + std::chrono::seconds(5);
  for (int i = 0; i < 50 && status != 200 && Clock::now() < end; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto again = d.client().Get("/v1/health");
    status = again ? again->status : 0;
  }
  CHECK(status == 200);
  for (int fd : held)
    ::close(fd);
}

TEST_CASE("200 slowloris and 200 idle connections: health and reads stay fast") {
  // The caps are raised so that every attacking connection is really held
  // (all come from 127.0.0.1, as the measuring client does): the pool, not
  // the per-address refusal, is what is measured here.
  BladedProcess d(with_test_plugins({"c_marker.so"},
                                    {"--rate-limit", "0", "--max-connections", "1000",
                                     "--max-connections-per-address", "1000"}));
  Attack attack(d.port, 200, 200);
  CHECK(attack.failed_connects() == 0);
  // Let every attacking connection be accepted and a few bytes trickle in.
  std::this_thread::sleep_for(std::chrono::seconds(3));

  std::vector<double> health_ms;
  std::vector<double> list_ms;
  int failures = 0;
  const auto end = Clock::now() + std::chrono::seconds(20);
  for (int i = 0; i < 200 && Clock::now() < end; ++i) {
    // A fresh connection each time, as a new client (or a probe) makes.
    {
      auto c = d.client();
      const auto start = Clock::now();
      auto res = c.Get("/v1/health");
      health_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
      if (!res || res->status != 200) ++failures;
    }
    {
      auto c = d.client();
      const auto start = Clock::now();
      auto res = c.Get("/v1/experiments", auth());
      list_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
      if (!res || res->status != 200) ++failures;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double health_p99 = p99_ms(health_ms);
  const double list_p99 = p99_ms(list_ms);
  MESSAGE("under 200 slowloris + 200 idle connections (" << attack.opened()
                                                          << " opened in all): GET /v1/health p99 "
                                                          << health_p99 << " ms over "
                                                          << health_ms.size()
                                                          << ", GET /v1/experiments p99 "
                                                          << list_p99 << " ms over "
                                                          << list_ms.size());
  CHECK(failures == 0);
  CHECK(health_ms.size() >= 100);
  CHECK(health_p99 < 50.0);
  CHECK(list_p99 < 100.0);
}
