// PolicyService over a real Store (a SQLite file in a temp dir), a real
// Scheduler and a TopicHub: changes, conflicts, the rule set published only
// when it changes, expiry by timer and at start, and the audit lines.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "../support/eventually.hpp"
#include "../support/temp_dir.hpp"
#include "blade/core/experiment/scheduler.hpp"
#include "blade/core/model/error.hpp"
#include "blade/core/plugin/topic_hub.hpp"
#include "blade/core/policy/policy_service.hpp"
#include "blade/core/store/store.hpp"
#include "stored_policy.hpp"

using namespace blade;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

json body(const std::string &name, int status = 503, std::int64_t duration_s = 0,
          std::int64_t start_delay_ms = 0) {
  return json{{"metadata", {{"name", name}}},
              {"spec",
               {{"rules", json::array({{{"match", {{"path", {{"prefix", "/api"}}}}},
                                        {"fault", {{"abort", {{"httpStatus", status}}}}}}})},
                {"duration_seconds", duration_s},
                {"start_delay_ms", start_delay_ms}}}};
}

// Every document the topic delivers, in order.
class Recorder {
 public:
  explicit Recorder(TopicHub &hub) {
    sub_ = hub.subscribe(kHttpRulesTopic, [this](const std::string &, const TopicHub::Document &d) {
      std::lock_guard lock(mutex_);
      docs_.push_back(*d);
    });
  }
  std::size_t count() const {
    std::lock_guard lock(mutex_);
    return docs_.size();
  }
  json last() const {
    std::lock_guard lock(mutex_);
    return docs_.empty() ? json() : json::parse(docs_.back());
  }
  std::vector<std::string> policies_in_last() const {
    std::vector<std::string> out;
    const json set = last();  // named: a temporary's member would dangle in the loop
    for (const json &r : set.at("rules"))
      out.push_back(r.at("policy").get<std::string>());
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> docs_;
  TopicHub::Subscription sub_;  // last: unsubscribes before the rest goes
};

std::vector<AuditEntry> audit_of(const Store &store, const std::string &action) {
  std::vector<AuditEntry> out;
  for (const AuditEntry &a : store.list_audit(1000))
    if (a.action == action) out.push_back(a);
  return out;
}

template <class F>
ErrorCode error_of(F &&f) {
  try {
    f();
  } catch (const Error &e) {
    return e.code();
  }
  FAIL("no error");
  return ErrorCode::Internal;
}

struct Fixture {
  test::TempDir dir{"blade-policy"};
  Store store{dir / "blade.db"};
  Scheduler scheduler{2};
  TopicHub hub;
  PolicyService service{store, scheduler, hub};
  Caller admin{"admin-token", "127.0.0.1"};
};

}  // namespace

TEST_CASE_FIXTURE(Fixture, "policies: create, get, list, update, delete; each change published") {
  service.start();
  Recorder topic(hub);
  REQUIRE(topic.count() == 1);  // the current set, at subscribe
  CHECK(topic.last()["rules"] == json::array());

  const FaultPolicy a = service.create(body("alpha"), admin);
  CHECK(a.version == 1);
  CHECK(a.active_from == a.updated_at);
  CHECK(!a.expires_at);
  CHECK(topic.count() == 2);
  CHECK(topic.policies_in_last() == std::vector<std::string>{"alpha"});
  CHECK(service.rule_set() == *hub.current(kHttpRulesTopic));

  service.create(body("beta", 500, 3600, 250), admin);
  CHECK(topic.count() == 3);
  REQUIRE(service.get("beta"));
  const FaultPolicy b = *service.get("beta");
  CHECK(b.start_delay_ms == 250);
  CHECK(b.duration_seconds == 3600);
  CHECK(b.active_from == b.updated_at + milliseconds(250));
  REQUIRE(b.expires_at);
  CHECK(*b.expires_at == b.active_from + std::chrono::hours(1));
  std::vector<std::string> names;
  for (const FaultPolicy &p : service.list())
    names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"alpha", "beta"});

  std::this_thread::sleep_for(milliseconds(5));  // a later updated_at
  json changed = body("alpha", 504);
  changed["metadata"]["version"] = "1";
  const FaultPolicy a2 = service.update("alpha", changed, admin);
  CHECK(a2.version == 2);
  CHECK(a2.created_at == a.created_at);
  CHECK(a2.updated_at > a.updated_at);  // the window restarted
  CHECK(a2.active_from == a2.updated_at);
  CHECK(topic.count() == 4);
  CHECK(service.get("alpha")->version == 2);
  CHECK(service.get("alpha")->spec == a2.spec);
  bool saw_504 = false;
  const json set = topic.last();
  for (const json &r : set["rules"])
    saw_504 = saw_504 || (r["policy"] == "alpha" && r["fault"]["abort"]["status"] == 504);
  CHECK(saw_504);

  service.remove("alpha", admin);
  CHECK(!service.get("alpha"));
  CHECK(topic.count() == 5);
  CHECK(topic.policies_in_last() == std::vector<std::string>{"beta"});

  // Audited, each with its version, by the caller.
  const auto creates = audit_of(store, "policy.create");
  REQUIRE(creates.size() == 2);
  CHECK(creates[1].subject == "alpha");
  CHECK(creates[1].actor == "admin-token");
  CHECK(creates[1].remote == "127.0.0.1");
  CHECK(creates[1].outcome == "ok");
  CHECK(json::parse(creates[1].params_json) == json{{"name", "alpha"}, {"version", 1}});
  const auto updates = audit_of(store, "policy.update");
  REQUIRE(updates.size() == 1);
  CHECK(json::parse(updates[0].params_json)["version"] == 2);
  const auto deletes = audit_of(store, "policy.delete");
  REQUIRE(deletes.size() == 1);
  CHECK(deletes[0].subject == "alpha");
}

TEST_CASE_FIXTURE(Fixture, "policies: 409 on a taken name or a stale version, 404, 400; none "
                           "changes anything") {
  service.start();
  service.create(body("alpha"), admin);
  Recorder topic(hub);
  const std::size_t before = topic.count();
  const std::size_t audit_before = store.list_audit(1000).size();

  CHECK(error_of([&] { service.create(body("alpha", 500), admin); }) == ErrorCode::AlreadyExists);
  json stale = body("alpha", 500);
  stale["metadata"]["version"] = 7;
  CHECK(error_of([&] { service.update("alpha", stale, admin); }) == ErrorCode::AlreadyExists);
  try {
    service.update("alpha", stale, admin);
  } catch (const Error &e) {
    REQUIRE(e.details().size() == 1);
    CHECK(e.details()[0].field == "metadata.version");
  }
  CHECK(error_of([&] { service.update("ghost", body("ghost"), admin); }) == ErrorCode::NotFound);
  CHECK(error_of([&] { service.remove("ghost", admin); }) == ErrorCode::NotFound);
  // The body names another policy than the one updated.
  try {
    service.update("alpha", body("beta"), admin);
    FAIL("accepted");
  } catch (const Error &e) {
    CHECK(e.code() == ErrorCode::InvalidArgument);
    CHECK(e.details().at(0).field == "metadata.name");
  }
  json bad = body("alpha");
  bad["spec"]["rules"][0]["fault"]["percentage"] = 101;
  CHECK(error_of([&] { service.update("alpha", bad, admin); }) == ErrorCode::InvalidArgument);
  CHECK(error_of([&] { service.create(body("Bad Name"), admin); }) == ErrorCode::InvalidArgument);

  CHECK(topic.count() == before);
  CHECK(store.list_audit(1000).size() == audit_before);
  CHECK(service.get("alpha")->version == 1);
  CHECK(service.get("alpha")->spec["rules"][0]["fault"]["abort"]["httpStatus"] == 503);
  CHECK(service.list().size() == 1);
}

TEST_CASE_FIXTURE(Fixture, "policies: the store refuses a stale version inside its transaction") {
  service.start();
  const FaultPolicy a = service.create(body("alpha"), admin);
  FaultPolicy next = a;
  next.version = 2;
  AuditEntry audit;
  audit.action = "policy.update";
  store.update_policy(next, 1, audit);
  // A second writer that also read version 1 loses.
  next.version = 2;
  CHECK(error_of([&] { store.update_policy(next, 1, audit); }) == ErrorCode::AlreadyExists);
  CHECK(error_of([&] { store.insert_policy(a, audit); }) == ErrorCode::AlreadyExists);
  next.name = "ghost";
  CHECK(error_of([&] { store.update_policy(next, 1, audit); }) == ErrorCode::NotFound);
  CHECK(error_of([&] { store.delete_policy("ghost", audit); }) == ErrorCode::NotFound);
  CHECK(audit_of(store, "policy.update").size() == 1);  // only the committed change's line
}

TEST_CASE_FIXTURE(Fixture, "policies: concurrent updates from one version: exactly one wins") {
  service.start();
  service.create(body("alpha"), admin);
  constexpr int kWriters = 8;
  std::atomic<int> won{0}, conflicted{0};
  std::vector<std::thread> writers;
  for (int i = 0; i < kWriters; ++i)
    writers.emplace_back([&, i] {
      json b = body("alpha", 500 + i);
      b["metadata"]["version"] = 1;
      try {
        service.update("alpha", b, admin);
        ++won;
      } catch (const Error &e) {
        if (e.code() == ErrorCode::AlreadyExists) ++conflicted;
      }
    });
  for (auto &t : writers)
    t.join();
  CHECK(won == 1);
  CHECK(conflicted == kWriters - 1);
  CHECK(service.get("alpha")->version == 2);
}

TEST_CASE_FIXTURE(Fixture, "policies: an identical update changes nothing and publishes nothing") {
  service.start();
  const FaultPolicy a = service.create(body("alpha", 503, 3600, 100), admin);
  Recorder topic(hub);
  const std::size_t before = topic.count();
  const std::string set_before = service.rule_set();
  std::this_thread::sleep_for(milliseconds(5));

  // The same body, written differently (defaults spelt out, a whole
  // percentage with a fraction, the version it read).
  json same = body("alpha", 503, 3600, 100);
  same["spec"]["rules"][0]["priority"] = 0;
  same["spec"]["rules"][0]["fault"]["percentage"] = 100.0;
  same["metadata"]["version"] = "1";
  const FaultPolicy again = service.update("alpha", same, admin);
  CHECK(again.version == 1);
  CHECK(again.updated_at == a.updated_at);
  CHECK(again.active_from == a.active_from);  // the window did not restart
  CHECK(again.expires_at == a.expires_at);
  CHECK(topic.count() == before);
  CHECK(service.rule_set() == set_before);
  CHECK(service.get("alpha")->version == 1);
  const auto updates = audit_of(store, "policy.update");
  REQUIRE(updates.size() == 1);
  CHECK(updates[0].outcome == "unchanged");

  // A change only in the window is a change.
  service.update("alpha", body("alpha", 503, 3600, 200), admin);
  CHECK(service.get("alpha")->version == 2);
  CHECK(topic.count() == before + 1);
}

TEST_CASE_FIXTURE(Fixture, "policies: a policy of duration 1 s is deleted by its timer") {
  service.start();
  service.create(body("forever"), admin);
  Recorder topic(hub);
  const auto created = steady_clock::now();
  service.create(body("brief", 503, 1), admin);
  CHECK(topic.policies_in_last() == std::vector<std::string>{"brief", "forever"});
  REQUIRE(test::eventually([&] { return !service.get("brief"); }, milliseconds(3000)));
  const auto took = steady_clock::now() - created;
  MESSAGE("deleted after "
          << std::chrono::duration_cast<milliseconds>(took).count() << " ms");
  CHECK(took >= milliseconds(1000));
  CHECK(took <= milliseconds(1200));
  CHECK(test::eventually(
      [&] { return topic.policies_in_last() == std::vector<std::string>{"forever"}; },
      milliseconds(100)));
  const auto expires = audit_of(store, "policy.expire");
  REQUIRE(expires.size() == 1);
  CHECK(expires[0].subject == "brief");
  CHECK(expires[0].actor == "system");
  CHECK(expires[0].outcome == "ok");
}

TEST_CASE_FIXTURE(Fixture, "policies: an update re-arms the expiry; a delete disarms it") {
  service.start();
  service.create(body("kept", 503, 1), admin);
  service.create(body("gone", 503, 1), admin);
  service.update("kept", body("kept", 503, 0), admin);  // now until deleted
  service.remove("gone", admin);
  std::this_thread::sleep_for(milliseconds(1300));
  REQUIRE(service.get("kept"));
  CHECK(!service.get("kept")->expires_at);
  CHECK(audit_of(store, "policy.expire").empty());
  CHECK(!service.get("gone"));
}

TEST_CASE_FIXTURE(Fixture, "policies: a change past the rule set's size bound is refused (429)") {
  service.start();
  // 100 rules with abort bodies of `kib` KiB each: 5.3 MB compiled at 52
  // KiB, so three fit under the 16 MiB bound and a fourth does not.
  auto big = [](const std::string &name, std::size_t kib) {
    json b = body(name);
    json rule = b["spec"]["rules"][0];
    rule["fault"]["abort"]["body"] = std::string(kib * 1024, 'x');
    b["spec"]["rules"] = json::array();
    for (int i = 0; i < 100; ++i)
      b["spec"]["rules"].push_back(rule);
    return b;
  };
  service.create(big("one", 52), admin);
  service.create(big("two", 52), admin);
  service.create(big("three", 52), admin);
  Recorder topic(hub);
  const std::size_t published = topic.count();
  const std::size_t audited = store.list_audit(1000).size();
  CHECK(error_of([&] { service.create(big("four", 52), admin); }) ==
        ErrorCode::ResourceExhausted);
  // Growing an existing one past the bound is refused the same way.
  CHECK(error_of([&] { service.update("two", big("two", 64), admin); }) ==
        ErrorCode::ResourceExhausted);
  CHECK(!service.get("four"));
  CHECK(service.get("two")->version == 1);
  CHECK(topic.count() == published);
  CHECK(store.list_audit(1000).size() == audited);
  CHECK(service.rule_set().size() < 16 * 1024 * 1024);
  // Room made, it fits.
  service.remove("one", admin);
  service.create(big("four", 52), admin);
  CHECK(topic.policies_in_last().size() == 300);
}

TEST_CASE("policies: those that expired while the daemon was down are deleted at start") {
  test::TempDir dir("blade-policy");
  const auto now = std::chrono::floor<milliseconds>(std::chrono::system_clock::now());
  {
    Store store(dir / "blade.db");
    // Written five minutes ago for one minute: expired four minutes ago.
    FaultPolicy p = test::stored_policy(parse_policy(body("old", 503, 60)),
                                        now - std::chrono::minutes(5),
                                        now - std::chrono::minutes(5), 3);
    AuditEntry a;
    a.action = "policy.create";
    store.insert_policy(p, a);
    FaultPolicy live = p;
    live.name = "live";
    live.expires_at = now + std::chrono::hours(1);
    store.insert_policy(live, a);
  }
  Store store(dir / "blade.db");
  Scheduler scheduler(2);
  TopicHub hub;
  PolicyService service(store, scheduler, hub);
  CHECK(service.list().size() == 2);
  service.start();
  CHECK(!service.get("old"));
  CHECK(service.get("live"));
  Recorder topic(hub);
  CHECK(topic.policies_in_last() == std::vector<std::string>{"live"});
  const auto expires = audit_of(store, "policy.expire");
  REQUIRE(expires.size() == 1);
  CHECK(expires[0].subject == "old");
  CHECK(expires[0].actor == "system");
  CHECK(json::parse(expires[0].params_json)["version"] == 3);
}

TEST_CASE("policies: a service destroyed with timers pending leaves nothing running") {
  test::TempDir dir("blade-policy");
  Store store(dir / "blade.db");
  Scheduler scheduler(2);
  TopicHub hub;
  {
    PolicyService service(store, scheduler, hub);
    service.start();
    service.create(body("brief", 503, 1), Caller{});
  }
  std::this_thread::sleep_for(milliseconds(1200));
  CHECK(store.get_policy("brief"));  // no service, no expiry (the next start does it)
  PolicyService next(store, scheduler, hub);
  std::this_thread::sleep_for(milliseconds(20));
  next.start();
  CHECK(!store.get_policy("brief"));
}
