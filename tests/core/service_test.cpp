// The experiment service with real plugins and a real SQLite file: the
// lifecycle, timeouts, callbacks to a real HTTP listener, retries, paging,
// dry runs, bad input, concurrency and recovery.
#include <atomic>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <doctest/doctest.h>
#include <httplib.h>

#include "../support/file_text.hpp"
#include "blade/core/spec/ssh_channel.hpp"
#include "engine.hpp"
#include "http/callback_sender.hpp"

namespace fs = std::filesystem;
using namespace blade;
using blade::test::Engine;
using blade::test::eventually;
using blade::test::read_text;

namespace {

std::size_t count_lines(const fs::path &p, const std::string &text) {
  std::ifstream in(p);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);)
    n += line == text;
  return n;
}

CreateRequest marker_request(const fs::path &marker) {
  CreateRequest r;
  r.target = "cmarker";
  r.action = "t";  // the alias
  r.flags = {{"path", marker.string()}};
  return r;
}

CreateRequest noop_request(const std::string &target, const fs::path &dir) {
  CreateRequest r;
  r.target = target;
  r.action = "noop";
  r.flags = {{"dir", dir.string()}};
  return r;
}

ExperimentStatus status_of(Engine &e, const std::string &uid) {
  return e.service->get(uid).status;
}

// The error a call throws, or a default Error if it throws none.
template <class F>
Error error_of(F &&f) {
  try {
    f();
  } catch (const Error &e) {
    return e;
  }
  return Error(ErrorCode::Internal, "no error thrown");
}

}  // namespace

TEST_CASE("sync create and destroy: the fault is real, each transition is stored then announced") {
  Engine e({"c_marker.so"});
  std::mutex m;
  std::vector<std::string> seen;
  auto sub = e.events.subscribe([&](const Event &ev) {
    // Announced only after it is stored: the store already shows this status.
    auto data = nlohmann::json::parse(*ev.data);
    auto stored = e.store->get_experiment(data["uid"]);
    std::lock_guard lock(m);
    seen.push_back(
        data["status"].get<std::string>() +
        (stored && std::string(to_string(stored->status)) == data["status"] ? "" : "!unstored"));
  });

  fs::path marker = e.dir / "marker";
  auto created = e.service->create(marker_request(marker));
  CHECK_FALSE(created.failure);
  const Experiment &x = created.experiment;
  CHECK(x.uid.size() == 16);
  CHECK(x.uid.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(x.status == ExperimentStatus::Running);
  CHECK(x.action == "touch");  // canonical, not the alias
  CHECK(x.executor == "inprocess:c-marker");
  CHECK(x.started_at);
  CHECK(read_text(marker) == x.uid);
  CHECK(nlohmann::json::parse(x.restore_json)["path"] == marker.string());

  auto destroyed = e.service->destroy(x.uid);
  CHECK_FALSE(destroyed.failure);
  CHECK(destroyed.experiment.status == ExperimentStatus::Destroyed);
  CHECK(destroyed.experiment.finished_at);
  CHECK_FALSE(fs::exists(marker));

  // Idempotent: the same answer again, nothing called.
  auto again = e.service->destroy(x.uid);
  CHECK(again.experiment.status == ExperimentStatus::Destroyed);
  CHECK(again.experiment.updated_at == destroyed.experiment.updated_at);

  // c-marker makes no promise to write ahead: its row is stored (created)
  // before the call. The destroy runs on this thread with no intermediate
  // destroying row: a running row is rolled back by recovery just the same.
  std::lock_guard lock(m);
  CHECK(seen == std::vector<std::string>{"created", "running", "destroyed"});
  auto audit = e.store->list_audit(10);
  REQUIRE(audit.size() == 2);
  CHECK(audit[0].action == "experiment.destroy");
  CHECK(audit[0].outcome == "ok");
  CHECK(audit[1].action == "experiment.create");
  CHECK(audit[1].subject == x.uid);
}

TEST_CASE("a writes-ahead create is stored once, after the call; its JSON is made once") {
  Engine e({"noop_a.so"});
  std::mutex m;
  std::vector<Event> seen;
  std::vector<std::string> stored_then;
  auto sub = e.events.subscribe([&](const Event &ev) {
    auto data = nlohmann::json::parse(*ev.data);
    auto stored = e.store->get_experiment(data["uid"]);
    std::lock_guard lock(m);
    seen.push_back(ev);
    stored_then.push_back(stored ? std::string(to_string(stored->status)) : "none");
  });
  auto created = e.service->create(noop_request("noopa", e.dir.path()));
  CHECK(created.experiment.status == ExperimentStatus::Running);
  REQUIRE(created.json);
  auto destroyed = e.service->destroy(created.experiment.uid);
  CHECK(destroyed.experiment.status == ExperimentStatus::Destroyed);
  REQUIRE(destroyed.json);

  std::lock_guard lock(m);
  REQUIRE(seen.size() == 2);  // no created, no destroying
  CHECK(stored_then == std::vector<std::string>{"running", "destroyed"});
  // The event's text is the result's text, the very same string.
  CHECK(seen[0].data.get() == created.json.get());
  CHECK(seen[1].data.get() == destroyed.json.get());
  CHECK(nlohmann::json::parse(*created.json) == to_json(created.experiment));
  CHECK(nlohmann::json::parse(*destroyed.json) == to_json(destroyed.experiment));
  CHECK(seen[0].failed_executor.empty());
  // Each row came with its audit line.
  auto audit = e.store->list_audit(10);
  REQUIRE(audit.size() == 2);
  CHECK(audit[1].action == "experiment.create");
  CHECK(nlohmann::json::parse(audit[1].params_json) ==
        nlohmann::json{{"target", "noopa"},
                       {"action", "noop"},
                       {"flags", to_json(created.experiment)["flags"]}});
  CHECK(nlohmann::json::parse(audit[0].params_json) ==
        nlohmann::json{{"target", "noopa"}, {"action", "noop"}, {"attempt", 1}});
}

TEST_CASE("an experiment's JSON text is what nlohmann writes for the same object") {
  Experiment x;
  x.uid = "00000000000000ab";
  x.target = "t\"q";
  x.action = "caf\xc3\xa9";
  x.flags = {{"path", "/a\nb"}, {"n", "1"}};
  x.status = ExperimentStatus::Destroyed;
  x.error = "ctl\x01";
  x.executor = "inprocess:x";
  x.result_json = R"({"b": 1, "a": [1, 2]})";
  x.destroy_result_json = "not json";
  x.timeout_s = 30;
  x.created_at = x.updated_at = SystemTime(std::chrono::milliseconds(1764374400123));
  x.deadline = x.created_at + std::chrono::seconds(30);
  x.finished_at = x.created_at + std::chrono::milliseconds(1999);
  x.quarantined = true;
  const std::string text = to_json_text(x);
  const auto j = nlohmann::json::parse(text);
  CHECK(text == j.dump());  // keys sorted, one line, as nlohmann writes it
  CHECK(j["created_at"] == "2025-11-29T00:00:00.123Z");
  CHECK(j["finished_at"] == "2025-11-29T00:00:02.122Z");
  CHECK(j["started_at"].is_null());
  CHECK(j["result"] == nlohmann::json{{"a", {1, 2}}, {"b", 1}});
  CHECK(j["destroy_result"] == "not json");
  CHECK(j["quarantined"] == true);
  CHECK(j["timeout"] == 30);
  CHECK(j["action"] == "caf\xc3\xa9");
  CHECK(j["flags"]["path"] == "/a\nb");
  CHECK(experiment_from_json(j).flags == x.flags);
}

TEST_CASE("a caller holding a uid's lane keeps that uid's jobs and timers out") {
  Scheduler scheduler(2);
  std::atomic<int> ran{0};
  {
    std::lock_guard lane(scheduler.lane("0123456789abcdef"));
    scheduler.post("0123456789abcdef", [&] { ++ran; });
    scheduler.schedule("0123456789abcdef", std::chrono::steady_clock::now(), [&] { ++ran; });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(ran == 0);
  }
  CHECK(eventually([&] { return ran == 2; }));
  // And a job in the lane keeps the caller out until it ends.
  std::atomic<bool> inside{false}, overlapped{false};
  scheduler.post("0123456789abcdef", [&] {
    inside = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    inside = false;
  });
  REQUIRE(eventually([&] { return inside.load(); }));
  {
    std::lock_guard lane(scheduler.lane("0123456789abcdef"));
    overlapped = inside.load();
  }
  CHECK_FALSE(overlapped);
  scheduler.stop();
}

TEST_CASE("async create answers at once in created, then runs on a worker") {
  Engine e({"c_marker.so"});
  fs::path marker = e.dir / "marker";
  auto req = marker_request(marker);
  req.async = true;
  auto created = e.service->create(req);
  CHECK(created.experiment.status == ExperimentStatus::Created);
  std::string uid = created.experiment.uid;
  REQUIRE(eventually([&] { return status_of(e, uid) == ExperimentStatus::Running; }));
  CHECK(fs::exists(marker));
  e.service->destroy(uid);
  CHECK_FALSE(fs::exists(marker));
}

TEST_CASE("a failed create leaves the experiment failed with the plugin's reason") {
  Engine e({"c_marker.so"});
  auto req = marker_request(e.dir / "marker");
  req.flags["fail-on-host"] = "true";
  auto r = e.service->create(req);
  CHECK(r.experiment.status == ExperimentStatus::Failed);
  CHECK(r.experiment.error == "asked to fail on the host");
  CHECK(r.failure == ErrorCode::FailedPrecondition);
  CHECK(r.experiment.finished_at);
  CHECK(e.service->get(r.experiment.uid).status == ExperimentStatus::Failed);
  CHECK(e.service->destroy(r.experiment.uid).experiment.status == ExperimentStatus::Failed);
}

TEST_CASE("a plugin's refusal before any step leaves nothing, as the spec check's does") {
  Engine e({"c_marker.so"});
  const fs::path marker = e.dir / "marker";
  auto refused = marker_request(marker);
  refused.flags["fail"] = "true";  // the plugin answers INVALID_ARGUMENT, nothing done
  const Error err = error_of([&] { e.service->create(refused); });
  CHECK(err.code() == ErrorCode::InvalidArgument);
  CHECK(std::string(err.what()).find("asked to fail") != std::string::npos);
  CHECK_FALSE(fs::exists(marker));
  CHECK(e.service->list({}).total == 0);

  // The spec's refusal of the same request: the same error code, the same
  // empty store.
  auto by_spec = marker_request(marker);
  by_spec.flags["fail"] = "maybe";
  CHECK(error_of([&] { e.service->create(by_spec); }).code() == ErrorCode::InvalidArgument);
  CHECK(e.service->list({}).total == 0);

  // Watchers heard it created and then ended, marked as not stored.
  std::vector<nlohmann::json> seen;
  for (const auto &ev : e.events.since(0))
    if (ev.type == "experiment") seen.push_back(nlohmann::json::parse(*ev.data));
  REQUIRE(seen.size() == 2);
  CHECK(seen[0]["status"] == "created");
  CHECK(seen[1]["status"] == "failed");
  CHECK(seen[1]["stored"] == false);
  CHECK(seen[0]["uid"] == seen[1]["uid"]);
  // The audit keeps the attempt.
  auto audit = e.store->list_audit(10);
  REQUIRE(audit.size() == 1);
  CHECK(audit[0].action == "experiment.create");
  CHECK(audit[0].outcome.find("INVALID_ARGUMENT: asked to fail (not stored)") == 0);

  // An async caller has the uid already: the refusal stays, failed, for it.
  refused.async = true;
  const auto uid = e.service->create(refused).experiment.uid;
  REQUIRE(eventually([&] { return status_of(e, uid) == ExperimentStatus::Failed; }));
  CHECK(e.service->get(uid).error == "asked to fail");
}

TEST_CASE("at its deadline an experiment is destroyed automatically") {
  Engine e({"c_marker.so"});
  fs::path marker = e.dir / "marker";
  auto req = marker_request(marker);
  req.timeout = "1s";
  auto x = e.service->create(req).experiment;
  CHECK(x.timeout_s == 1);
  REQUIRE(x.deadline);
  CHECK(fs::exists(marker));
  REQUIRE(eventually([&] { return status_of(e, x.uid) == ExperimentStatus::Destroyed; },
                     std::chrono::seconds(5)));
  CHECK_FALSE(fs::exists(marker));
  auto audit = e.store->list_audit(1);
  CHECK(audit.at(0).action == "experiment.timeout");
  CHECK(audit.at(0).actor == "timeout");
}

TEST_CASE("a timeout firing during a manual destroy destroys once") {
  Engine e({"noop_a.so"});
  for (int i = 0; i < 5; ++i) {
    auto req = noop_request("noopa", e.dir.path());
    req.timeout = "1";
    auto x = e.service->create(req).experiment;
    // Aim the manual destroy at the deadline itself.
    std::this_thread::sleep_until(std::chrono::system_clock::time_point(*x.deadline));
    e.service->destroy(x.uid);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    CHECK(status_of(e, x.uid) == ExperimentStatus::Destroyed);
    CHECK(count_lines(e.dir / "destroy-calls", x.uid) == 1);
  }
}

TEST_CASE("callbacks reach a real HTTP listener, retried after a failure") {
  httplib::Server listener;
  std::mutex m;
  std::vector<nlohmann::json> received;
  std::atomic<int> attempts{0};
  listener.Post("/hook", [&](const httplib::Request &req, httplib::Response &res) {
    if (attempts++ == 0) {  // the first delivery fails
      res.status = 500;
      return;
    }
    std::lock_guard lock(m);
    received.push_back(nlohmann::json::parse(req.body));
    res.status = 204;
  });
  int port = listener.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { listener.listen_after_bind(); });

  CallbackPolicy policy;
  policy.first_backoff = std::chrono::milliseconds(50);
  {
    Engine e(
        {"c_marker.so"}, blade::test::fast_settings(),
        [](const std::string &url, const std::string &body) {
          return server::post_callback(url, body);
        },
        policy);
    auto req = marker_request(e.dir / "marker");
    req.callback = "http://127.0.0.1:" + std::to_string(port) + "/hook";
    auto x = e.service->create(req).experiment;
    e.service->destroy(x.uid);
    REQUIRE(eventually([&] {
      std::lock_guard lock(m);
      return received.size() == 2;
    }));
    std::lock_guard lock(m);
    // The running notice failed once and was retried; every notice arrived.
    std::set<std::string> statuses;
    for (const auto &body : received) {
      CHECK(body["uid"] == x.uid);
      statuses.insert(body["status"]);
    }
    CHECK(statuses == std::set<std::string>{"running", "destroyed"});
    CHECK(attempts == 3);
  }
  listener.stop();
  serving.join();
}

TEST_CASE("a failed destroy stays visible as destroying with its error, and is retried") {
  Engine e({"noop_a.so"});
  std::ofstream(e.dir / "block-destroy") << "x";
  auto x = e.service->create(noop_request("noopa", e.dir.path())).experiment;
  auto d = e.service->destroy(x.uid);
  CHECK(d.failure == ErrorCode::FailedPrecondition);
  CHECK(d.experiment.status == ExperimentStatus::Destroying);
  CHECK(d.experiment.error == "destroy blocked by test");
  // Retries happen on their own; unblock and watch it finish.
  REQUIRE(eventually([&] { return count_lines(e.dir / "destroy-calls", x.uid) >= 2; }));
  CHECK(status_of(e, x.uid) == ExperimentStatus::Destroying);
  fs::remove(e.dir / "block-destroy");
  REQUIRE(eventually([&] { return status_of(e, x.uid) == ExperimentStatus::Destroyed; }));
  CHECK(e.service->get(x.uid).error.empty());

  // An operator may force it.
  std::ofstream(e.dir / "block-destroy") << "x";
  auto y = e.service->create(noop_request("noopa", e.dir.path())).experiment;
  auto forced = e.service->destroy(y.uid, {}, true);
  CHECK(forced.experiment.status == ExperimentStatus::Destroyed);
  CHECK(forced.experiment.error.find("forced by the operator") == 0);
}

// Plugin ABI 1.4: RESULT set in destroy is the destroy's report.
TEST_CASE("a destroy's report is stored with the experiment, apart from create's result") {
  Engine e({"destroy_report.so", "destroy_report_array.so", "minor3.so", "c_marker.so"});
  auto x = e.service->create(noop_request("reporter", e.dir.path())).experiment;
  CHECK(x.destroy_result_json.empty());
  CHECK_FALSE(to_json(x).contains("destroy_result"));
  auto d = e.service->destroy(x.uid);
  CHECK_FALSE(d.failure);
  CHECK(d.experiment.status == ExperimentStatus::Destroyed);
  const auto report = nlohmann::json::parse(d.experiment.destroy_result_json);
  CHECK(report == nlohmann::json{{"uid", x.uid}, {"had_restore", true}, {"blocked", false}});
  // Stored: read back from the store, and in the API's object; the
  // create's result is left as it was.
  auto stored = e.store->get_experiment(x.uid);
  REQUIRE(stored);
  CHECK(nlohmann::json::parse(stored->destroy_result_json) == report);
  CHECK(stored->result_json == "{}");
  const auto j = to_json(*stored);
  CHECK(j["destroy_result"] == report);
  CHECK(j["result"] == nlohmann::json::object());
  CHECK(experiment_from_json(j).destroy_result_json == report.dump());

  SUBCASE("a report that is not a JSON object is dropped; the destroy still succeeds") {
    auto y = e.service->create(noop_request("badreport", e.dir.path())).experiment;
    auto dy = e.service->destroy(y.uid);
    CHECK_FALSE(dy.failure);
    CHECK(dy.experiment.status == ExperimentStatus::Destroyed);
    CHECK(dy.experiment.error.empty());
    CHECK(dy.experiment.destroy_result_json.empty());
    CHECK(e.store->get_experiment(y.uid)->destroy_result_json.empty());
    CHECK_FALSE(to_json(dy.experiment).contains("destroy_result"));
  }
  SUBCASE("plugins that report nothing (ABI 1.3 and 1.0) load and destroy as before") {
    const auto minor3 = e.registry.find_plugin("minor3");
    REQUIRE(minor3);
    CHECK(minor3->abi() == "1.3");
    auto m = e.service->create(noop_request("minorthree", e.dir.path())).experiment;
    CHECK(m.status == ExperimentStatus::Running);
    auto dm = e.service->destroy(m.uid);
    CHECK_FALSE(dm.failure);
    CHECK(dm.experiment.status == ExperimentStatus::Destroyed);
    CHECK(count_lines(e.dir / "destroy-calls", m.uid) == 1);
    CHECK(dm.experiment.destroy_result_json.empty());
    CHECK_FALSE(to_json(dm.experiment).contains("destroy_result"));
    const fs::path marker = e.dir / "marker";
    auto c = e.service->create(marker_request(marker)).experiment;
    auto dc = e.service->destroy(c.uid);
    CHECK(dc.experiment.status == ExperimentStatus::Destroyed);
    CHECK_FALSE(fs::exists(marker));
    CHECK(dc.experiment.destroy_result_json.empty());
  }
  SUBCASE("a failed destroy's report is stored too; the retry that succeeds replaces it") {
    std::ofstream(e.dir / "block-destroy") << "x";
    auto z = e.service->create(noop_request("reporter", e.dir.path())).experiment;
    auto dz = e.service->destroy(z.uid);
    CHECK(dz.failure == ErrorCode::FailedPrecondition);
    CHECK(dz.experiment.status == ExperimentStatus::Destroying);
    CHECK(nlohmann::json::parse(dz.experiment.destroy_result_json)["blocked"] == true);
    CHECK(nlohmann::json::parse(e.store->get_experiment(z.uid)->destroy_result_json)["blocked"] ==
          true);
    fs::remove(e.dir / "block-destroy");
    REQUIRE(eventually([&] { return status_of(e, z.uid) == ExperimentStatus::Destroyed; }));
    CHECK(nlohmann::json::parse(e.service->get(z.uid).destroy_result_json)["blocked"] == false);
  }
}

TEST_CASE("recovery's destroys store their reports too") {
  test::TempDir shared("blade-recovery-report");
  const fs::path db = shared / "blade.db";
  std::string uid;
  {
    Engine first({"destroy_report.so"}, blade::test::fast_settings(), {}, {}, db);
    uid = first.service->create(noop_request("reporter", first.dir.path())).experiment.uid;
    // Gone without a destroy, as in a crash.
  }
  Engine second({"destroy_report.so"}, blade::test::fast_settings(), {}, {}, db);
  CHECK(second.service->recover().destroyed == 1);
  const Experiment x = second.service->get(uid);
  CHECK(x.status == ExperimentStatus::Destroyed);
  REQUIRE_FALSE(x.destroy_result_json.empty());
  CHECK(nlohmann::json::parse(x.destroy_result_json) ==
        nlohmann::json{{"uid", uid}, {"had_restore", true}, {"blocked", false}});
}

TEST_CASE("list filters, pages and orders; total ignores paging") {
  Engine e({"noop_a.so", "noop_b.so"});
  std::vector<std::string> uids;
  for (int i = 0; i < 3; ++i)
    uids.push_back(e.service->create(noop_request("noopa", e.dir.path())).experiment.uid);
  for (int i = 0; i < 2; ++i) {
    auto r = noop_request("noopb", e.dir.path());
    r.action = "other";
    r.flags.clear();
    uids.push_back(e.service->create(r).experiment.uid);
  }
  e.service->destroy(uids[0]);

  ExperimentFilter f;
  CHECK(e.service->list(f).total == 5);
  f.target = "noopa";
  CHECK(e.service->list(f).total == 3);
  f.status = ExperimentStatus::Running;
  CHECK(e.service->list(f).total == 2);
  ExperimentFilter by_action;
  by_action.action = "other";
  CHECK(e.service->list(by_action).total == 2);

  ExperimentFilter page;
  page.limit = 2;
  page.offset = 1;
  page.ascending = true;
  auto p = e.service->list(page);
  CHECK(p.total == 5);
  REQUIRE(p.items.size() == 2);
  CHECK(p.items[0].uid == uids[1]);
  CHECK(p.items[1].uid == uids[2]);
  page.ascending = false;
  page.offset = 0;
  CHECK(e.service->list(page).items.at(0).uid == uids[4]);
}

TEST_CASE("a dry run validates and plans, and changes nothing") {
  Engine e({"example.so"});
  CreateRequest r;
  r.target = "example";
  r.action = "marker";
  fs::path marker = e.dir / "m";
  r.flags = {{"path", marker.string()}};
  r.dry_run = true;
  auto result = e.service->create(r);
  REQUIRE(result.plan);
  CHECK((*result.plan)["executor"] == "inprocess:example");
  CHECK((*result.plan)["flags"]["content"] == "blade example marker\n");
  CHECK((*result.plan)["plan"]["create_file"] == marker.string());
  CHECK_FALSE(fs::exists(marker));
  CHECK(e.service->list({}).total == 0);
  CHECK(e.store->list_audit(10).empty());
}

TEST_CASE("bad input: a distinct, field-named error, and nothing persisted") {
  Engine e({"noop_a.so", "c_marker.so"});
  auto field_of = [&](CreateRequest r) {
    auto err = error_of([&] { e.service->create(r); });
    return std::make_pair(err.code(),
                          err.details().empty() ? std::string() : err.details()[0].field);
  };
  CreateRequest unknown_target = noop_request("nosuch", e.dir.path());
  CHECK(field_of(unknown_target) == std::make_pair(ErrorCode::NotFound, std::string("action")));
  CreateRequest unknown_action = noop_request("noopa", e.dir.path());
  unknown_action.action = "explode";
  CHECK(field_of(unknown_action).first == ErrorCode::NotFound);

  CreateRequest missing = marker_request("/tmp/x");
  missing.flags.clear();
  CHECK(field_of(missing) == std::make_pair(ErrorCode::InvalidArgument, std::string("flags.path")));

  CreateRequest wrong_type = noop_request("noopa", e.dir.path());
  wrong_type.flags["percent"] = "lots";
  CHECK(field_of(wrong_type) ==
        std::make_pair(ErrorCode::InvalidArgument, std::string("flags.percent")));

  CreateRequest out_of_range = noop_request("noopa", e.dir.path());
  out_of_range.flags["percent"] = "101";
  auto range = error_of([&] { e.service->create(out_of_range); });
  CHECK(range.details().at(0).field == "flags.percent");
  CHECK(range.details().at(0).description.find("100") != std::string::npos);

  CreateRequest unknown_flag = noop_request("noopa", e.dir.path());
  unknown_flag.flags["bogus"] = "1";
  CHECK(field_of(unknown_flag) ==
        std::make_pair(ErrorCode::InvalidArgument, std::string("flags.bogus")));

  CreateRequest bad_timeout = noop_request("noopa", e.dir.path());
  bad_timeout.timeout = "soon";
  CHECK(field_of(bad_timeout) ==
        std::make_pair(ErrorCode::InvalidArgument, std::string("timeout")));
  bad_timeout.timeout = "-5";
  CHECK(field_of(bad_timeout).second == "timeout");

  CreateRequest bad_callback = noop_request("noopa", e.dir.path());
  bad_callback.callback = "file:///etc/passwd";
  CHECK(field_of(bad_callback) ==
        std::make_pair(ErrorCode::InvalidArgument, std::string("callback")));

  CreateRequest no_target;
  no_target.action = "noop";
  CHECK(field_of(no_target) == std::make_pair(ErrorCode::InvalidArgument, std::string("target")));

  CHECK(error_of([&] { e.service->destroy("0000000000000000"); }).code() == ErrorCode::NotFound);
  CHECK(e.service->list({}).total == 0);
}

TEST_CASE("ChaosBlade's SSH channel flags are refused by name, before anything happens") {
  Engine e({"c_marker.so"});
  const fs::path marker = e.dir / "marker";
  for (const auto &flag : ssh_channel_flags()) {
    CAPTURE(flag.name);
    auto r = marker_request(marker);
    r.flags[std::string(flag.name)] = flag.name == "channel" ? "ssh" : "x";
    for (bool dry_run : {false, true}) {
      r.dry_run = dry_run;
      const Error err = error_of([&] { e.service->create(r); });
      CHECK(err.code() == ErrorCode::InvalidArgument);
      REQUIRE(err.details().size() == 1);
      CHECK(err.details()[0].field == "flags." + std::string(flag.name));
      CHECK(std::string(err.what())
                .find("remote execution over SSH is not supported; run bladed "
                      "on that host") != std::string::npos);
    }
  }
  auto upper = marker_request(marker);
  upper.flags["channel"] = "SSH";
  CHECK(error_of([&] { e.service->create(upper); }).code() == ErrorCode::InvalidArgument);
  CHECK_FALSE(fs::exists(marker));
  CHECK(e.service->list({}).total == 0);
  CHECK(e.store->list_audit(10).empty());

  // ChaosBlade's local channel is what bladed does anyway.
  auto local = marker_request(marker);
  local.flags["channel"] = "local";
  auto created = e.service->create(local);
  CHECK(created.experiment.status == ExperimentStatus::Running);
  CHECK(created.experiment.flags.count("channel") == 0);
  CHECK(fs::exists(marker));
  e.service->destroy(created.experiment.uid);
  CHECK_FALSE(fs::exists(marker));
}

TEST_CASE("timeouts: whole seconds or Go durations, 0 is none, nothing wraps") {
  Engine e({"noop_a.so"});
  auto timeout_of = [&](const std::string &text) {
    auto r = noop_request("noopa", e.dir.path());
    r.timeout = text;
    r.dry_run = true;
    return e.service->create(r).plan->at("timeout");
  };
  CHECK(timeout_of("300") == 300);
  CHECK(timeout_of("90s") == 90);
  CHECK(timeout_of("5m") == 300);
  CHECK(timeout_of("1h30m") == 5400);
  CHECK(timeout_of("1.5h") == 5400);
  CHECK(timeout_of("0").is_null());  // ChaosBlade: no timeout
  CHECK(timeout_of("0s").is_null());
  auto refusal = [&](const std::string &text) {
    auto r = noop_request("noopa", e.dir.path());
    r.timeout = text;
    const Error err = error_of([&] { e.service->create(r); });
    CHECK(err.code() == ErrorCode::InvalidArgument);
    CHECK(err.details().at(0).field == "timeout");
    return err.details().at(0).description;
  };
  CHECK(refusal("1500ms") == "must be a whole number of seconds");
  CHECK(refusal("500ms") == "must be a whole number of seconds");
  CHECK(refusal("18446744073709551615") == "must be at most 366 days");
  CHECK(refusal("9223372036854775808") == "must be at most 366 days");
  CHECK(refusal("-99999999999999999999") == "must be positive");
  CHECK(refusal("-5m") == "must be positive");
  CHECK(e.service->list({}).total == 0);
}

TEST_CASE("the cap on active experiments refuses more") {
  auto settings = blade::test::fast_settings();
  settings.max_active = 2;
  Engine e({"noop_a.so"}, settings);
  e.service->create(noop_request("noopa", e.dir.path()));
  auto second = e.service->create(noop_request("noopa", e.dir.path())).experiment;
  CHECK(error_of([&] { e.service->create(noop_request("noopa", e.dir.path())); }).code() ==
        ErrorCode::ResourceExhausted);
  e.service->destroy(second.uid);
  CHECK(e.service->create(noop_request("noopa", e.dir.path())).experiment.status ==
        ExperimentStatus::Running);
}

TEST_CASE("200 experiments created and destroyed from 8 threads: none lost, no busy errors") {
  Engine e({"noop_a.so"});
  std::atomic<int> errors{0};
  std::mutex m;
  std::vector<std::string> uids;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        try {
          CreateRequest r;
          r.target = "noopa";
          r.action = "noop";
          auto x = e.service->create(r).experiment;
          auto d = e.service->destroy(x.uid);
          if (d.experiment.status != ExperimentStatus::Destroyed) ++errors;
          std::lock_guard lock(m);
          uids.push_back(x.uid);
        } catch (const std::exception &ex) {
          MESSAGE("error: " << ex.what());
          ++errors;
        }
      }
    });
  }
  for (auto &t : threads)
    t.join();
  CHECK(errors == 0);
  CHECK(uids.size() == 200);
  ExperimentFilter f;
  f.status = ExperimentStatus::Destroyed;
  CHECK(e.service->list(f).total == 200);
  CHECK(std::set<std::string>(uids.begin(), uids.end()).size() == 200);
}

TEST_CASE("recovery rolls back what a dead daemon left running, or left half-created") {
  test::TempDir shared("blade-recovery");
  fs::path db = shared / "blade.db";
  fs::path running_marker = shared / "running";
  fs::path half_marker = shared / "half";
  std::string running_uid;
  {
    Engine first({"c_marker.so"}, blade::test::fast_settings(), {}, {}, db);
    running_uid = first.service->create(marker_request(running_marker)).experiment.uid;
    // A create the daemon died in: the fault is there, the record says created.
    Experiment half;
    half.uid = "00000000000000aa";
    half.target = "cmarker";
    half.action = "touch";
    half.flags = {{"path", half_marker.string()}};
    half.executor = "inprocess:c-marker";
    half.created_at = half.updated_at = std::chrono::system_clock::now();
    first.store->insert_experiment(half);
    std::ofstream(half_marker) << half.uid;
    // The engine goes away without destroying anything, as in a crash.
  }
  CHECK(fs::exists(running_marker));
  Engine second({"c_marker.so"}, blade::test::fast_settings(), {}, {}, db);
  auto report = second.service->recover();
  CHECK(report.destroyed == 2);
  CHECK(report.failed == 0);
  CHECK_FALSE(fs::exists(running_marker));
  CHECK_FALSE(fs::exists(half_marker));
  CHECK(status_of(second, running_uid) == ExperimentStatus::Destroyed);
  CHECK(status_of(second, "00000000000000aa") == ExperimentStatus::Destroyed);
  int recovered = 0;
  for (const auto &a : second.store->list_audit(20))
    recovered += a.action == "experiment.recover" && a.outcome == "ok";
  CHECK(recovered == 2);
  // Nothing left to do the second time.
  CHECK(second.service->recover().destroyed == 0);
}

TEST_CASE("shutdown rolls back every active experiment and refuses new ones") {
  Engine e({"c_marker.so"});
  fs::path a = e.dir / "a", b = e.dir / "b";
  auto x = e.service->create(marker_request(a)).experiment;
  auto y = e.service->create(marker_request(b)).experiment;
  auto report = e.service->destroy_all_active("SIGTERM");
  CHECK(report.destroyed == 2);
  CHECK_FALSE(fs::exists(a));
  CHECK_FALSE(fs::exists(b));
  CHECK(status_of(e, x.uid) == ExperimentStatus::Destroyed);
  CHECK(status_of(e, y.uid) == ExperimentStatus::Destroyed);
  CHECK(e.store->list_audit(1).at(0).action == "experiment.shutdown");
  CHECK(error_of([&] { e.service->create(marker_request(a)); }).code() == ErrorCode::Unavailable);
}

namespace {

class FakeAgent : public PreparationHandler {
 public:
  std::string name() const override { return "test:agent"; }
  CallOutcome prepare(const Preparation &p, const CallOptions &) override {
    CallOutcome o;
    if (p.flags.count("pid") == 0) {
      o.status = 1;
      o.message = "pid required";
    }
    o.restore_json = R"({"attached":true})";
    return o;
  }
  CallOutcome revoke(const Preparation &, const CallOptions &) override { return {}; }
};

}  // namespace

TEST_CASE("preparations: prepare, get, list, revoke; an unserved type is NOT_FOUND") {
  Engine e({});
  CHECK(error_of([&] {
          e.service->prepare({"jvm", {{"pid", "1"}}});
        }).code() == ErrorCode::NotFound);
  e.service->add_preparation_handler("jvm", std::make_shared<FakeAgent>());
  auto p = e.service->prepare({"jvm", {{"pid", "1234"}}});
  CHECK(p.status == PreparationStatus::Running);
  CHECK(p.executor == "test:agent");
  CHECK(e.service->get_preparation(p.uid).restore_json == R"({"attached":true})");
  auto failed = e.service->prepare({"jvm", {}});
  CHECK(failed.status == PreparationStatus::Failed);
  CHECK(failed.error == "pid required");
  CHECK(e.service->list_preparations({}).total == 2);
  CHECK(e.service->revoke(p.uid).status == PreparationStatus::Revoked);
  CHECK(e.service->revoke(p.uid).status == PreparationStatus::Revoked);  // idempotent
}
