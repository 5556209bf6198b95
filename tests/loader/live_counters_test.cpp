// The host side of plugin ABI 1.5 through a real plugin .so (the SDK's C++
// layer over the C ABI) on a TopicHub and LiveCounters the test owns:
// subscribe delivers the current document then every change in order,
// unsubscribe stops delivery, shutdown ends what the plugin left open, and
// counters are checked, refused, and dropped when the fault is gone.
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <blade/plugin.h>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "../support/temp_dir.hpp"
#include "blade/core/model/error.hpp"
#include "blade/core/plugin/live_counters.hpp"
#include "blade/core/plugin/plugin_loader.hpp"
#include "blade/core/plugin/topic_hub.hpp"

namespace fs = std::filesystem;
using blade::LiveCounters;
using blade::TopicHub;

namespace {

const fs::path kTestPlugins = BLADE_TEST_PLUGIN_DIR;

// The live-counters test plugin, loaded from a private copy (mode 0755, as
// the loader wants an operator's plugin dir), on the test's hub and sink.
struct Loaded {
  blade::test::TempDir dir{"blade-live"};
  TopicHub hub;
  LiveCounters counters;
  std::shared_ptr<blade::LoadedPlugin> plugin;

  explicit Loaded(bool with_hub = true) {
    fs::create_directories(dir / "plugins");
    const fs::path copy = dir / "plugins" / "live_counters.so";
    fs::copy_file(kTestPlugins / "live_counters.so", copy);
    fs::permissions(copy, fs::perms(0755));
    blade::HostSettings settings{"test", dir / "state"};
    settings.topics = with_hub ? &hub : nullptr;
    settings.counters = &counters;
    plugin = blade::load_plugin(copy, settings);
  }
};

blade::PluginRequest request(const std::string &uid, const std::string &action,
                             blade::FlagValues flags = {}) {
  blade::PluginRequest r;
  r.uid = uid;
  r.target = "live";
  r.action = action;
  r.flags = std::move(flags);
  return r;
}

// What the follow action reported: every document joined by "|", and how
// many there were.
std::pair<std::string, std::uint64_t> followed(const LiveCounters &counters, const std::string &uid) {
  auto json = counters.for_uid(uid);
  if (!json) return {"(none)", 0};
  const auto &series = json->at("series").at(0);
  return {series.at("labels").at("docs").get<std::string>(),
          series.at("counters").at("deliveries").get<std::uint64_t>()};
}

}  // namespace

TEST_CASE("subscribe: the current document first, then every publish in order; destroy ends it") {
  Loaded l;
  l.hub.publish("test.topic", R"({"n":0})");
  const std::string uid = "00000000000000a1";
  auto made = l.plugin->create(request(uid, "follow", {{"topic", "test.topic"}}));
  REQUIRE_MESSAGE(made.ok(), made.message);
  CHECK(l.hub.subscriber_count("test.topic") == 1);
  CHECK(followed(l.counters, uid) == std::pair<std::string, std::uint64_t>{R"({"n":0})", 1});

  // Publishes from two threads one after the other, and a burst: each
  // arrives whole, once, in order, before publish returns.
  std::thread([&] { l.hub.publish("test.topic", R"({"n":1})"); }).join();
  for (int n = 2; n <= 20; ++n) l.hub.publish("test.topic", R"({"n":)" + std::to_string(n) + "}");
  l.hub.publish("other.topic", R"({"x":1})");  // not followed: not delivered
  std::string expected;
  for (int n = 0; n <= 20; ++n) expected += (n ? "|" : "") + std::string(R"({"n":)") + std::to_string(n) + "}";
  CHECK(followed(l.counters, uid) == std::pair<std::string, std::uint64_t>{expected, 21});

  auto undone = l.plugin->destroy(request(uid, "follow", {{"topic", "test.topic"}}));
  REQUIRE_MESSAGE(undone.ok(), undone.message);
  CHECK(l.hub.subscriber_count("test.topic") == 0);  // the SDK's subscription unsubscribed
  CHECK_FALSE(l.counters.for_uid(uid));              // dropped once destroy returned OK
  l.hub.publish("test.topic", R"({"n":21})");
  CHECK_FALSE(l.counters.for_uid(uid));  // nothing delivered after unsubscribe
}

TEST_CASE("subscribe: an unknown topic, or a host without topics, fails the create NOT_SUPPORTED") {
  {
    Loaded l;
    auto made = l.plugin->create(request("00000000000000a2", "follow", {{"topic", "never.published"}}));
    CHECK(blade::plugin_status_name(made.status) == "NOT_SUPPORTED");
    CHECK(made.message == "this host does not publish topic 'never.published'");
  }
  {
    Loaded l(false);
    l.hub.publish("test.topic", "{}");  // published, but not the plugin's host's hub
    auto made = l.plugin->create(request("00000000000000a3", "follow", {{"topic", "test.topic"}}));
    CHECK(blade::plugin_status_name(made.status) == "NOT_SUPPORTED");
    CHECK(l.hub.subscriber_count("test.topic") == 0);
  }
}

TEST_CASE("shutdown: subscriptions left open are ended by the host before the code goes") {
  Loaded l;
  l.hub.publish("test.topic", "{}");
  auto made = l.plugin->create(request("00000000000000a4", "leak", {{"topic", "test.topic"}}));
  REQUIRE_MESSAGE(made.ok(), made.message);
  CHECK(l.hub.subscriber_count("test.topic") == 1);
  l.plugin.reset();  // shutdown, then the library is closed
  CHECK(l.hub.subscriber_count("test.topic") == 0);
  // Were the subscription still there, this would call into unmapped code.
  l.hub.publish("test.topic", R"({"after":true})");
}

TEST_CASE("report_counters: a plugin thread's reports, shown until destroy returns OK") {
  Loaded l;
  const std::string uid = "00000000000000b1";
  auto flags = blade::FlagValues{{"rule", "checkout/0"}};
  auto made = l.plugin->create(request(uid, "count", flags));
  REQUIRE_MESSAGE(made.ok(), made.message);

  // The thread reports every 10 ms: the figure grows.
  auto total = [&]() -> std::uint64_t {
    auto json = l.counters.for_uid(uid);
    return json ? json->at("series").at(0).at("counters").at("total_requests").get<std::uint64_t>() : 0;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (total() < 5 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const std::uint64_t first = total();
  CHECK(first >= 5);
  auto snapshot = l.counters.snapshot();
  REQUIRE(snapshot.size() == 1);
  CHECK(snapshot[0].plugin == "live-counters");
  CHECK(snapshot[0].uid == uid);
  REQUIRE(snapshot[0].series.size() == 1);
  CHECK(snapshot[0].series[0].labels ==
        std::vector<std::pair<std::string, std::string>>{{"rule", "checkout/0"}});

  auto undone = l.plugin->destroy(request(uid, "count", flags));
  REQUIRE_MESSAGE(undone.ok(), undone.message);
  CHECK_FALSE(l.counters.for_uid(uid));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK_FALSE(l.counters.for_uid(uid));  // the thread was stopped: nothing came back
  CHECK(l.counters.snapshot().empty());
}

TEST_CASE("report_counters: a bad report is refused keeping the last good; a failed create drops them") {
  Loaded l;
  const std::string uid = "00000000000000b2";
  auto made = l.plugin->create(request(uid, "bad", {{"then-fail", "false"}}));
  REQUIRE_MESSAGE(made.ok(), made.message);
  CHECK(made.result_json == R"({"good":true,"bad":false})");
  CHECK(l.counters.for_uid(uid) == nlohmann::json::parse(
                                       R"({"series":[{"labels":{},"counters":{"errors":1}}]})"));

  const std::string failing = "00000000000000b3";
  auto failed = l.plugin->create(request(failing, "bad", {{"then-fail", "true"}}));
  CHECK(blade::plugin_status_name(failed.status) == "FAILED_PRECONDITION");
  CHECK_FALSE(l.counters.for_uid(failing));  // nothing runs: nothing to count
  CHECK(l.counters.for_uid(uid));            // another experiment's stay
}

TEST_CASE("unloading a plugin forgets what its instance reported") {
  Loaded l;
  const std::string uid = "00000000000000b4";
  REQUIRE(l.plugin->create(request(uid, "count", {{"rule", "r"}})).ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!l.counters.for_uid(uid) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(l.counters.for_uid(uid));
  l.plugin.reset();  // shutdown stops the counting thread; its figures are stale now
  CHECK(l.counters.snapshot().empty());
}

TEST_CASE("LiveCounters: the uid's shape, the per-plugin cap, and drop_owner keeps a newer owner's") {
  LiveCounters c;
  const std::string good = R"({"series":[{"counters":{"n":1}}]})";
  try {
    c.report("p", 1, "not-a-uid", good);
    FAIL("a malformed uid was taken");
  } catch (const blade::Error &e) {
    CHECK(e.code() == blade::ErrorCode::InvalidArgument);
  }
  try {
    c.report("p", 1, "00000000000000c1", R"({"series":[{"counters":{"n":-1}}]})");
    FAIL("a bad report was taken");
  } catch (const blade::Error &e) {
    CHECK(std::string(e.what()) ==
          "counters for experiment 00000000000000c1 refused: series[0].counters.n: not a "
          "non-negative integer");
  }
  for (std::size_t i = 0; i < LiveCounters::kMaxUidsPerPlugin; ++i) {
    char uid[17];
    std::snprintf(uid, sizeof uid, "%016zx", i);
    c.report("p", 1, uid, good);
  }
  CHECK_THROWS_AS(c.report("p", 1, "ffffffffffffffff", good), blade::Error);
  c.report("p", 1, "0000000000000000", good);  // replacing one is not growing
  c.report("q", 2, "ffffffffffffffff", good);  // another plugin has its own room
  c.report("p", 3, "0000000000000001", good);  // now reported by a newer instance
  c.drop_owner(1);
  auto left = c.snapshot();
  REQUIRE(left.size() == 2);
  CHECK(left[0].plugin == "p");
  CHECK(left[0].uid == "0000000000000001");
  CHECK(left[1].plugin == "q");
  c.drop("ffffffffffffffff");
  CHECK(c.snapshot().size() == 1);
}
