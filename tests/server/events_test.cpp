// GET /v1/events against a real bladed: experiment events as Server-Sent
// Events, resuming with Last-Event-ID, the stream cap, and shutdown with a
// stream open.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../support/eventually.hpp"
#include "../support/file_text.hpp"
#include "bladed_process.hpp"
#include "experiment_calls.hpp"
#include "sse_client.hpp"
#include "routes/event_cursor.hpp"

namespace fs = std::filesystem;
using blade::test::auth;
using blade::test::BladedProcess;
using blade::test::eventually;
using blade::test::kToken;
using blade::test::marker_experiment;
using blade::test::post_json;
using blade::test::SseClient;
using blade::test::SseEvent;
using blade::test::with_test_plugins;
using nlohmann::json;

namespace {

// The experiment events seen for one uid, as their statuses in order.
std::vector<std::string> statuses_of(const std::vector<SseEvent> &events, const std::string &uid) {
  std::vector<std::string> out;
  for (const auto &e : events) {
    if (e.type != "experiment") continue;
    auto data = json::parse(e.data);
    if (data["uid"] == uid) out.push_back(data["status"].get<std::string>());
  }
  return out;
}

std::uint64_t id_of(const SseEvent &e) {
  return std::stoull(e.id);
}

// Ids strictly increasing by one: no gap, no duplicate, no reordering.
void check_consecutive(const std::vector<SseEvent> &events, std::uint64_t first) {
  for (std::size_t i = 0; i < events.size(); ++i) {
    INFO("event " << i << " of " << events.size());
    CHECK(id_of(events[i]) == first + i);
  }
}

// A c_marker experiment on `file`, which then holds its uid; the uid.
std::string create_marker(httplib::Client &c, const fs::path &file) {
  const auto a = blade::test::create(c, marker_experiment(file));
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  const std::string uid = a.uid();
  REQUIRE(fs::exists(file));
  CHECK(blade::test::read_text(file) == uid);
  return uid;
}

// Destroys the c_marker experiment `uid`: its file is gone.
void destroy_marker(httplib::Client &c, const std::string &uid, const fs::path &file) {
  const auto a = blade::test::destroy(c, uid);
  REQUIRE_MESSAGE(a.status == 200, a.body.dump());
  CHECK_FALSE(fs::exists(file));
}

httplib::Headers resume_from(std::uint64_t id) {
  auto h = auth();
  h.emplace("Last-Event-ID", std::to_string(id));
  return h;
}

}  // namespace

TEST_CASE("events stream experiment changes and resume from Last-Event-ID without gap or repeat") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto c = d.client();
  const auto one = d.dir / "one", two = d.dir / "two", three = d.dir / "three";

  SseClient first(d, auth());
  REQUIRE(eventually([&] { return first.opened(); }));
  CHECK(first.status() == 200);
  CHECK(first.header("Content-Type") == "text/event-stream");
  CHECK(first.header("Cache-Control") == "no-cache");
  CHECK(first.header("X-Accel-Buffering") == "no");

  const auto uid1 = create_marker(c, one);
  destroy_marker(c, uid1, one);
  // c-marker does not write ahead: its row, and its event, come before the
  // call. A destroy on the caller's thread announces no destroying.
  const std::vector<std::string> whole_life = {"created", "running", "destroyed"};
  CHECK(eventually([&] { return statuses_of(first.events(), uid1).size() == 3; }));
  auto seen = first.events();
  REQUIRE(seen.size() == 3);
  CHECK(statuses_of(seen, uid1) == whole_life);
  check_consecutive(seen, id_of(seen.front()));
  for (const auto &e : seen) {
    CHECK(e.type == "experiment");
    auto data = json::parse(e.data);
    CHECK(data["target"] == "cmarker");
    CHECK(data["executor"] == "inprocess:c-marker");
  }
  CHECK(first.junk().empty());
  const std::uint64_t last_seen = id_of(seen.back());
  first.close();

  // Missed while away: two's whole life and three's start.
  const auto uid2 = create_marker(c, two);
  destroy_marker(c, uid2, two);
  const auto uid3 = create_marker(c, three);

  SseClient second(d, resume_from(last_seen));
  CHECK(eventually([&] { return second.events().size() >= 5; }));
  auto replayed = second.events();
  REQUIRE(replayed.size() == 5);
  CHECK(statuses_of(replayed, uid1).empty());
  CHECK(statuses_of(replayed, uid2) == whole_life);
  CHECK(statuses_of(replayed, uid3) == std::vector<std::string>{"created", "running"});
  check_consecutive(replayed, last_seen + 1);

  // Then live, continuing where the replay stopped.
  destroy_marker(c, uid3, three);
  CHECK(eventually([&] { return second.events().size() >= 6; }));
  auto all = second.events();
  REQUIRE(all.size() == 6);
  CHECK(statuses_of(all, uid3) == whole_life);
  check_consecutive(all, last_seen + 1);
  CHECK(second.junk().empty());
}

TEST_CASE("events resume from ?last_event_id= and announce a reset for an unknown id") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto c = d.client();
  const auto uid = create_marker(c, d.dir / "m");  // events 1 (created) and 2 (running)

  SseClient by_query(d, auth(), "/v1/events?last_event_id=1");
  CHECK(eventually([&] { return by_query.events().size() >= 1; }));
  auto q = by_query.events();
  REQUIRE(q.size() == 1);
  CHECK(q[0].id == "2");
  CHECK(statuses_of(q, uid) == std::vector<std::string>{"running"});

  // An id this run never issued (bladed restarted): reset, then live.
  SseClient stale(d, resume_from(500));
  REQUIRE(eventually([&] { return stale.events().size() >= 1; }));
  auto r = stale.events();
  REQUIRE(r.size() == 1);
  CHECK(r[0].type == "reset");
  CHECK(r[0].id == "2");  // where the stream goes on from
  auto reset = json::parse(r[0].data);
  CHECK(reset["last_event_id"] == 500);
  CHECK(reset["oldest_event_id"] == 1);
  destroy_marker(c, uid, d.dir / "m");
  CHECK(eventually([&] { return stale.events().size() >= 2; }));
  r = stale.events();
  REQUIRE(r.size() == 2);
  CHECK(r[1].id == "3");
  CHECK(statuses_of(r, uid) == std::vector<std::string>{"destroyed"});

  httplib::Headers garbled = auth();
  garbled.emplace("Last-Event-ID", "12abc");
  auto bad = c.Get("/v1/events", garbled);
  REQUIRE(bad);
  CHECK(bad->status == 400);
  CHECK(json::parse(bad->body)["code"] == "INVALID_ARGUMENT");
}

TEST_CASE("streams opened while events flow get every event once, in order") {
  BladedProcess d(with_test_plugins({"c_marker.so", "noop_a.so"}, {"--rate-limit", "0"}));
  auto c = d.client();
  const auto uid = create_marker(c, d.dir / "m");  // events 1 and 2

  // noop-a writes ahead: each round is two events (running, destroyed).
  // Experiments created and destroyed as fast as one client can, so streams
  // subscribe and read the history while events are being published.
  std::atomic<bool> stop{false};
  std::atomic<int> rounds{0};
  std::atomic<int> churn_failure{0};  // the status that stopped the churn
  std::thread churn([&] {
    auto cc = d.client();
    // Bounded, so every event stays in the kept history (1024).
    while (!stop && rounds < 200) {
      auto res = post_json(cc, "/v1/experiments", {{"target", "noopa"}, {"action", "noop"}});
      if (!res || res->status != 201) {
        churn_failure = res ? res->status : -1;
        break;
      }
      auto id = json::parse(res->body)["data"]["uid"].get<std::string>();
      cc.Delete(("/v1/experiments/" + id).c_str(), auth());
      ++rounds;
    }
  });
  std::vector<std::unique_ptr<SseClient>> streams;
  std::vector<std::optional<std::uint64_t>> from;
  for (std::optional<std::uint64_t> resume :
       {std::optional<std::uint64_t>(2), std::optional<std::uint64_t>(),
        std::optional<std::uint64_t>(0), std::optional<std::uint64_t>(1)}) {
    const int before = rounds;
    CHECK(eventually([&] { return rounds >= before + 5; }));
    streams.push_back(std::make_unique<SseClient>(d, resume ? resume_from(*resume) : auth()));
    from.push_back(resume);
  }
  CHECK(eventually([&] { return rounds >= 60; }));
  stop = true;
  churn.join();
  CHECK(churn_failure == 0);
  destroy_marker(c, uid, d.dir / "m");  // the last event: 2 * rounds + 3
  const std::uint64_t last = 2 * static_cast<std::uint64_t>(rounds.load()) + 3;

  for (std::size_t i = 0; i < streams.size(); ++i) {
    INFO("stream " << i);
    auto &s = *streams[i];
    CHECK(eventually([&] {
      auto ev = s.events();
      return !ev.empty() && id_of(ev.back()) >= last;
    }));
    s.close();
    auto ev = s.events();
    REQUIRE_FALSE(ev.empty());
    CHECK(id_of(ev.back()) == last);
    if (from[i]) CHECK(id_of(ev.front()) == *from[i] + 1);
    check_consecutive(ev, id_of(ev.front()));
    for (const auto &e : ev)
      CHECK(e.type == "experiment");
    CHECK(s.junk().empty());
  }
}

TEST_CASE("events need a token") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  auto c = d.client();
  auto res = c.Get("/v1/events");
  REQUIRE(res);
  CHECK(res->status == 401);
  CHECK(json::parse(res->body)["code"] == "UNAUTHENTICATED");
  auto wrong = c.Get("/v1/events", {{"X-Api-Token", kToken + "x"}});
  REQUIRE(wrong);
  CHECK(wrong->status == 401);
}

TEST_CASE("streams beyond --max-event-streams get 429 until one closes") {
  BladedProcess d(with_test_plugins({"c_marker.so"}, {"--max-event-streams", "1"}));
  auto c = d.client();
  auto first = std::make_unique<SseClient>(d, auth());
  REQUIRE(eventually([&] { return first->opened(); }));

  auto over = c.Get("/v1/events", auth());
  REQUIRE(over);
  CHECK(over->status == 429);
  CHECK(json::parse(over->body)["code"] == "RESOURCE_EXHAUSTED");

  // The slot comes back once the daemon notices the client has gone.
  first.reset();
  std::unique_ptr<SseClient> next;
  CHECK(eventually(
      [&] {
        next = std::make_unique<SseClient>(d, auth());
        if (eventually([&] { return next->opened() || next->ended(); },
                       std::chrono::milliseconds(2000)))
          return next->opened();
        return false;
      },
      std::chrono::seconds(10)));
}

TEST_CASE("SIGTERM with a stream open: the stream ends and bladed exits 0 promptly") {
  BladedProcess d(with_test_plugins({"c_marker.so"}));
  SseClient stream(d, auth());
  REQUIRE(eventually([&] { return stream.opened(); }));
  const auto start = std::chrono::steady_clock::now();
  d.process->signal(SIGTERM);
  CHECK(d.process->exit_code(std::chrono::seconds(5)) == 0);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));
  CHECK(eventually([&] { return stream.ended(); }, std::chrono::seconds(3)));
}

namespace {

std::vector<blade::Event> bus_events(std::uint64_t first, std::uint64_t last) {
  std::vector<blade::Event> out;
  for (auto id = first; id <= last; ++id)
    out.push_back({id, "experiment",
                   std::make_shared<const std::string>(json{{"n", id}}.dump()), {}});
  return out;
}

// The ids and types in SSE text, in order.
std::vector<std::string> framed(const std::string &text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find("\n\n", pos);
    REQUIRE(end != std::string::npos);
    std::string block = text.substr(pos, end - pos);
    pos = end + 2;
    auto id = block.substr(4, block.find('\n') - 4);
    auto type_at = block.find("event: ") + 7;
    out.push_back(id + " " + block.substr(type_at, block.find('\n', type_at) - type_at));
  }
  return out;
}

}  // namespace

TEST_CASE("EventCursor writes the overlap of history and live events once") {
  using blade::server::EventCursor;
  using V = std::vector<std::string>;
  {
    // Fresh: live only; events also in the history read are not repeated.
    EventCursor c(std::nullopt, bus_events(1, 3));
    CHECK(c.take_replay().empty());
    CHECK(framed(c.take_live(bus_events(2, 4))) == V{"4 experiment"});
    CHECK(framed(c.take_live(bus_events(4, 5))) == V{"5 experiment"});
  }
  {
    // Resuming: the kept events after the id, then live ones not yet sent.
    EventCursor c(1, bus_events(1, 3));
    CHECK(framed(c.take_replay()) == V{"2 experiment", "3 experiment"});
    CHECK(c.take_replay().empty());
    CHECK(framed(c.take_live(bus_events(3, 4))) == V{"4 experiment"});
    CHECK(c.last_sent() == 4);
  }
  {
    // Up to date: nothing to replay, no reset.
    EventCursor c(5, bus_events(1, 5));
    CHECK(c.take_replay().empty());
    EventCursor none(0, {});
    CHECK(none.take_replay().empty());
  }
  {
    // Events 1..2 are no longer kept: reset (continuing after 2), then 3..5.
    EventCursor c(0, bus_events(3, 5));
    auto text = c.take_replay();
    CHECK(framed(text) == V{"2 reset", "3 experiment", "4 experiment", "5 experiment"});
    auto data = text.substr(text.find("data: ") + 6);
    auto reset = json::parse(data.substr(0, data.find('\n')));
    CHECK(reset["last_event_id"] == 0);
    CHECK(reset["oldest_event_id"] == 3);
  }
  {
    // An id from an earlier run: reset at the head, then live only.
    EventCursor c(9, bus_events(1, 5));
    CHECK(framed(c.take_replay()) == V{"5 reset"});
    CHECK(framed(c.take_live(bus_events(5, 6))) == V{"6 experiment"});
    EventCursor empty(3, {});
    CHECK(framed(empty.take_replay()) == V{"0 reset"});
  }
}

TEST_CASE("format_sse keeps data on one line") {
  auto text = blade::server::format_sse(7, "experiment", json{{"error", "two\nlines"}}.dump());
  CHECK(text == "id: 7\nevent: experiment\ndata: {\"error\":\"two\\nlines\"}\n\n");
}
