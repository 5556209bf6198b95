// GET /v1/config/stream against a real bladed: the compiled rule set at
// connect and after every change, measured from the change's answer; no
// update when nothing changed; concurrent readers; a reader that stops
// reading is dropped without holding up the others; the cap; keep-alives;
// auth. Only 127.0.0.1 is spoken to, and every wait is bounded.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../support/eventually.hpp"
#include "policy_calls.hpp"
#include "sse_client.hpp"

using namespace blade::test;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

constexpr const char *kStream = "/v1/config/stream";
// What the issue asks of a change reaching a reader.
constexpr auto kOnTime = std::chrono::milliseconds(100);

double ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// The update events a reader has, parsed.
std::vector<json> updates(const SseClient &reader) {
  std::vector<json> out;
  for (const auto &e : reader.events()) {
    if (e.type != "update") continue;
    json set = json::parse(e.data, nullptr, false);
    REQUIRE_MESSAGE(set.is_object(), "update data is not JSON: " << e.data.substr(0, 200));
    CHECK(set["version"] == e.id);
    out.push_back(std::move(set));
  }
  return out;
}

// The policy names a rule set's rules come from, in order of appearance.
std::set<std::string> policies_in(const json &set) {
  std::set<std::string> out;
  for (const auto &r : set["rules"])
    out.insert(r["policy"].get<std::string>());
  return out;
}

// Waits for the reader's update number `n` (from 1); its event.
SseEvent wait_update(const SseClient &reader, std::size_t n,
                     std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  REQUIRE_MESSAGE(eventually([&] { return reader.count("update") >= n; }, limit),
                  "update " << n << " did not arrive; the reader has " << reader.count("update"));
  return *reader.nth("update", n);
}

// A stream opened once a slot is free (a closed one frees its slot when the
// daemon notices, within a second).
std::unique_ptr<SseClient> open_when_free(const BladedProcess &d) {
  std::unique_ptr<SseClient> reader;
  const bool opened = eventually([&] {
    reader = std::make_unique<SseClient>(d, auth(), kStream);
    eventually([&] { return reader->status() != 0; }, std::chrono::seconds(2));
    return reader->status() == 200;
  });
  REQUIRE_MESSAGE(opened, "no config stream slot came free");
  return reader;
}

httplib::Headers token(const std::string &secret) {
  return {{"X-Api-Token", secret}};
}

// A reader that asks for the stream over a raw socket with a tiny receive
// buffer and never reads what comes: a data plane that hung.
class StuckReader {
 public:
  StuckReader(int port, const std::string &secret) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    REQUIRE(fd_ >= 0);
    const int small = 2048;  // the kernel doubles it and keeps a floor
    REQUIRE(::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
    const std::string request = std::string("GET ") + kStream +
                                " HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Token: " + secret + "\r\n\r\n";
    REQUIRE(::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(request.size()));
  }
  ~StuckReader() { ::close(fd_); }
  StuckReader(const StuckReader &) = delete;
  StuckReader &operator=(const StuckReader &) = delete;

  // Reads what the daemon had sent until it closes the connection, for at
  // most `limit`; the bytes read, or -1 if it was still open at the end.
  long drain_until_closed(std::chrono::milliseconds limit) {
    long total = 0;
    const auto end = Clock::now() + limit;
    std::vector<char> buffer(1 << 16);
    while (Clock::now() < end) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return total;
      if (n > 0) total += n;
    }
    return -1;
  }

 private:
  int fd_;
};

// A policy of 100 rules each with an abort body of `body_bytes`: a large
// rule set for few requests (a body is at most 1 MiB).
json bulky_policy(const std::string &name, int priority, std::size_t body_bytes) {
  json rules = json::array();
  for (int i = 0; i < 100; ++i) {
    json r = abort_rule("/bulk/" + std::to_string(i) + "/", 503, priority);
    r["fault"]["abort"]["body"] = std::string(body_bytes, 'x');
    rules.push_back(std::move(r));
  }
  return fault_policy(name, std::move(rules));
}

}  // namespace

TEST_CASE("a reader gets the whole rule set at connect, then every change within 100 ms") {
  PolicyDaemon d({"--rate-limit", "0"});
  auto c = d.bladed.client();
  REQUIRE(create_policy(c, fault_policy("alpha")).status == 201);
  REQUIRE(create_policy(c, fault_policy("beta", json::array({abort_rule("/b/"), abort_rule("/c/")})))
              .status == 201);

  SseClient reader(d.bladed, auth(), kStream);
  wait_update(reader, 1);
  CHECK(reader.status() == 200);
  CHECK(reader.header("Content-Type").rfind("text/event-stream", 0) == 0);
  json first = updates(reader).at(0);
  CHECK(first["rules"].size() == 3);
  CHECK(policies_in(first) == std::set<std::string>{"alpha", "beta"});
  CHECK(first["version"].get<std::string>().size() == 16);

  // Creates, updates and deletes, each timed from its answer to the update.
  std::vector<double> latencies;
  std::size_t seen = 1;
  auto timed = [&](auto change, auto check) {
    const Answer a = change();
    const auto answered = Clock::now();
    REQUIRE_MESSAGE(a.status / 100 == 2, a.body.dump());
    const SseEvent e = wait_update(reader, ++seen);
    latencies.push_back(ms(e.at - answered));
    check(json::parse(e.data));
  };
  for (int i = 0; i < 10; ++i) {
    const std::string name = "p" + std::to_string(i);
    timed([&] { return create_policy(c, fault_policy(name)); },
          [&](const json &set) { CHECK(policies_in(set).count(name)); });
    timed([&] { return put_policy(c, name, fault_policy(name, json::array({abort_rule("/u/", 502, i)}))); },
          [&](const json &set) {
            bool found = false;
            for (const auto &r : set["rules"])
              found = found || (r["policy"] == name && r["fault"]["abort"]["status"] == 502);
            CHECK(found);
          });
  }
  timed([&] { return delete_policy(c, "alpha"); },
        [&](const json &set) { CHECK_FALSE(policies_in(set).count("alpha")); });

  const double worst = *std::max_element(latencies.begin(), latencies.end());
  MESSAGE("config stream: " << latencies.size() << " changes, worst " << worst
                            << " ms from the API's answer to the update");
  CHECK(worst <= ms(kOnTime));

  // Every version seen once, in order, none repeated.
  std::set<std::string> versions;
  for (const auto &u : updates(reader))
    versions.insert(u["version"].get<std::string>());
  CHECK(versions.size() == updates(reader).size());
  CHECK(reader.junk().empty());
}

TEST_CASE("a change that changes nothing sends no update and keeps the version") {
  PolicyDaemon d({"--config-stream-keepalive", "0.1"});
  auto c = d.bladed.client();
  const json body = fault_policy("same");
  REQUIRE(create_policy(c, body).status == 201);
  SseClient reader(d.bladed, auth(), kStream);
  const SseEvent first = wait_update(reader, 1);

  const Answer again = put_policy(c, "same", body);
  REQUIRE(again.status == 200);
  CHECK(again.body["data"]["metadata"]["version"] == "1");
  // Keep-alives every 100 ms show the stream alive and flowing meanwhile.
  const int comments = reader.comments();
  REQUIRE(eventually([&] { return reader.comments() >= comments + 3; }, std::chrono::seconds(3)));
  CHECK(updates(reader).size() == 1);

  // A new reader gets the version the first one has.
  SseClient late(d.bladed, auth(), kStream);
  CHECK(wait_update(late, 1).id == first.id);
}

TEST_CASE("8 concurrent readers each get every version, in order") {
  PolicyDaemon d({"--rate-limit", "0"});
  auto c = d.bladed.client();
  std::vector<std::unique_ptr<SseClient>> readers;
  for (int i = 0; i < 8; ++i)
    readers.push_back(std::make_unique<SseClient>(d.bladed, auth(), kStream));
  for (auto &r : readers)
    wait_update(*r, 1);

  // Each change waits for every reader: a stream keeps only the latest set,
  // so changes faster than a reader would rightly be merged.
  std::vector<std::string> versions = {readers[0]->events().at(0).id};
  double worst = 0;
  for (int i = 0; i < 12; ++i) {
    const std::string name = "c" + std::to_string(i % 4);
    const Answer a = i < 4 ? create_policy(c, fault_policy(name))
                           : put_policy(c, name, fault_policy(name, json::array({abort_rule("/v/", 500 + i)})));
    const auto answered = Clock::now();
    REQUIRE_MESSAGE(a.status / 100 == 2, a.body.dump());
    for (auto &r : readers) {
      const SseEvent e = wait_update(*r, versions.size() + 1);
      worst = std::max(worst, ms(e.at - answered));
    }
    versions.push_back(readers[0]->events().back().id);
  }
  MESSAGE("8 readers, 12 changes: worst " << worst << " ms from the API's answer to the update");
  CHECK(worst <= ms(kOnTime));
  for (auto &r : readers) {
    std::vector<std::string> ids;
    for (const auto &e : r->events())
      if (e.type == "update") ids.push_back(e.id);
    CHECK(ids == versions);
    CHECK(r->junk().empty());
  }
  CHECK(std::set<std::string>(versions.begin(), versions.end()).size() == versions.size());
}

TEST_CASE("a reader that stops reading is dropped; the others keep receiving on time") {
  // A stalled write is given up after 10 s, the default (long enough to
  // measure the others meanwhile on a loaded machine); three streams at most.
  const auto write_timeout = std::chrono::seconds(10);
  PolicyDaemon d({"--rate-limit", "0", "--write-timeout", std::to_string(write_timeout.count()),
                  "--max-config-streams", "3"});
  auto c = d.bladed.client();
  // About 5.7 MB of rule set: more than a socket's buffers on both sides
  // take (the kernel lets them grow to a few MB), so the stuck reader's
  // first write cannot finish.
  const int bulky = 8;
  for (int i = 0; i < bulky; ++i)
    REQUIRE(create_policy(c, bulky_policy("bulk" + std::to_string(i), 0, 7000)).status == 201);

  SseClient a(d.bladed, auth(), kStream);
  SseClient b(d.bladed, auth(), kStream);
  wait_update(a, 1);
  wait_update(b, 1);
  const auto set_bytes = wait_update(a, 1).data.size();
  MESSAGE("rule set of " << set_bytes << " bytes");
  CHECK(set_bytes > 5'000'000);

  auto slots_full = [&] {
    SseClient probe(d.bladed, auth(), kStream);
    eventually([&] { return probe.status() != 0; }, std::chrono::seconds(2));
    return probe.status() == 429;
  };
  StuckReader stuck(d.bladed.port, kToken);
  const auto stuck_at = Clock::now();
  // The stuck stream holds the third slot while its write stalls.
  REQUIRE(eventually(slots_full, std::chrono::seconds(2)));

  // The large set goes (its updates are not timed: they are megabytes),
  // then small changes are timed while the stuck stream still stalls.
  std::size_t seen = 1;
  for (int i = 0; i < bulky; ++i) {
    REQUIRE(delete_policy(c, "bulk" + std::to_string(i)).status == 200);
    ++seen;
  }
  std::vector<double> latencies;
  for (int i = 0; i < 6; ++i) {
    const std::string name = "small" + std::to_string(i);
    const Answer u = create_policy(c, fault_policy(name));
    const auto answered = Clock::now();
    REQUIRE(u.status == 201);
    ++seen;
    for (SseClient *r : {&a, &b}) {
      const SseEvent e = wait_update(*r, seen);
      CHECK(policies_in(json::parse(e.data)).count(name));
      latencies.push_back(ms(e.at - answered));
    }
  }
  const double worst = *std::max_element(latencies.begin(), latencies.end());
  MESSAGE("2 readers beside a stuck one, 6 changes: worst " << worst
                                                      << " ms (negative: before the API's answer)");
  CHECK(worst <= ms(kOnTime));
  // All of that happened while the stuck stream still held its slot.
  const double measured_within = ms(Clock::now() - stuck_at);
  MESSAGE("measured within " << measured_within << " ms of the stuck reader's connect");
  REQUIRE_MESSAGE(measured_within < ms(write_timeout) - 500,
                  "too slow to measure while the stuck reader stalls: the machine is overloaded");
  CHECK(slots_full());

  // Dropped once its write stalled for the write timeout: its slot comes
  // free (watched without reading from it, which would unstall it).
  REQUIRE(eventually([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return !slots_full();
  }, std::chrono::seconds(20)));
  const double dropped_after = ms(Clock::now() - stuck_at);
  // What it had been sent ends before even its first update did.
  const long got = stuck.drain_until_closed(std::chrono::seconds(5));
  MESSAGE("the stuck reader was dropped " << dropped_after << " ms after it connected, with "
                                          << got << " bytes sent to it");
  CHECK(dropped_after >= ms(write_timeout));
  CHECK(got >= 0);
  CHECK(got < static_cast<long>(set_bytes));
  const auto next = open_when_free(d.bladed);
  CHECK(wait_update(*next, 1).id == wait_update(a, seen).id);
}

TEST_CASE("streams beyond max-config-streams are answered 429") {
  PolicyDaemon d({"--max-config-streams", "2"});
  SseClient one(d.bladed, auth(), kStream);
  SseClient two(d.bladed, auth(), kStream);
  wait_update(one, 1);
  wait_update(two, 1);

  SseClient three(d.bladed, auth(), kStream);
  REQUIRE(eventually([&] { return three.status() != 0 && three.ended(); }));
  CHECK(three.status() == 429);
  CHECK(three.events().empty());

  // A slot given back is taken again.
  one.close();
  const auto again = open_when_free(d.bladed);
  CHECK(wait_update(*again, 1).id == wait_update(two, 1).id);
}

TEST_CASE("keep-alive comments come at the configured interval") {
  PolicyDaemon d({"--config-stream-keepalive", "0.2"});
  SseClient reader(d.bladed, auth(), kStream);
  wait_update(reader, 1);
  const int before = reader.comments();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const int during = reader.comments() - before;
  MESSAGE("keep-alives in 1.5 s at 0.2 s: " << during);
  CHECK(during >= 5);
  CHECK(during <= 8);
  CHECK(updates(reader).size() == 1);
}

TEST_CASE("a viewer may read the stream; no token or a wrong one is 401") {
  PolicyDaemon d;
  SseClient viewing(d.bladed, viewer(), kStream);
  CHECK(wait_update(viewing, 1).type == "update");
  CHECK(viewing.status() == 200);

  for (const auto &h : {httplib::Headers{}, token("wrong-token-0123456789abcdef")}) {
    SseClient refused(d.bladed, h, kStream);
    REQUIRE(eventually([&] { return refused.status() != 0 && refused.ended(); }));
    CHECK(refused.status() == 401);
    CHECK(refused.events().empty());
  }
}
