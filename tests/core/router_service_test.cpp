// The experiment service over a fake ExecutorSource: no plugin file is
// loaded, the service sees only the interface. Proves the service needs
// nothing else from routing (create, destroy, recovery, plugin-change
// bookkeeping), and that recovery walks every experiment a crash left in
// created, however many (2,500 here, past the store's page size of 1,000).
#include <algorithm>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>

#include <doctest/doctest.h>

#include "../support/temp_dir.hpp"
#include "blade/core/experiment/event_bus.hpp"
#include "blade/core/experiment/experiment_service.hpp"
#include "blade/core/experiment/scheduler.hpp"
#include "blade/core/plugin/executor_router.hpp"
#include "blade/core/store/store.hpp"
#include "engine.hpp"

namespace fs = std::filesystem;
using namespace blade;

namespace {

// Records every call; create answers with a restore record naming the uid.
class FakeExecutor final : public Executor {
 public:
  std::string name() const override { return executor_name(ExecutorKind::InProcess, "fake"); }
  CallOutcome create(const PluginRequest &r, const CallOptions &) override {
    if (during_create) during_create();
    std::lock_guard lock(mutex_);
    created_.push_back(r);
    CallOutcome o;
    o.restore_json = nlohmann::json{{"undo", r.uid}}.dump();
    return o;
  }
  CallOutcome destroy(const PluginRequest &r, const CallOptions &) override {
    std::lock_guard lock(mutex_);
    destroyed_.push_back(r);
    return {};
  }
  CallOutcome dry_run(const PluginRequest &, const CallOptions &) override {
    CallOutcome o;
    o.plan_json = R"({"would":"poke"})";
    return o;
  }
  bool in_process() const override { return direct; }
  bool writes_ahead() const override { return direct; }
  // Set before use: calls on the caller's thread, with nothing stored first.
  bool direct = false;
  std::function<void()> during_create;

  std::vector<PluginRequest> created() const {
    std::lock_guard lock(mutex_);
    return created_;
  }
  std::vector<PluginRequest> destroyed() const {
    std::lock_guard lock(mutex_);
    return destroyed_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<PluginRequest> created_, destroyed_;
};

// Serves host/fake/poke (alias p), with one int flag, by FakeExecutor.
class FakeSource final : public ExecutorSource {
 public:
  FakeSource() {
    target_.target = "fake";
    action_.name = "poke";
    action_.aliases = {"p"};
    FlagSpec n;
    n.name = "n";
    n.type = FlagType::Int;
    n.max = 10;
    action_.flags = {n};
  }
  Route resolve(const std::string &scope, const std::string &target,
                const std::string &action) const override {
    if (scope != "host" || target != "fake" || (action != "poke" && action != "p"))
      throw Error(ErrorCode::NotFound, "nothing serves " + target + " " + action);
    return Route{executor, &target_, &action_};
  }
  std::shared_ptr<Executor> executor_for(const Experiment &e) const override {
    return e.executor == executor->name() ? executor : nullptr;
  }
  std::vector<CatalogEntry> catalogue() const override {
    return {CatalogEntry{target_, action_, executor->name()}};
  }

  std::shared_ptr<FakeExecutor> executor = std::make_shared<FakeExecutor>();

 private:
  TargetSpec target_;
  ActionSpec action_;
};

// The service as bladed assembles it, around a fake source.
struct Service {
  explicit Service(const fs::path &db, const FakeSource &source)
      : store(db), service(store, source, scheduler, events, nullptr, test::fast_settings()) {}
  ~Service() { scheduler.stop(); }
  Store store;
  Scheduler scheduler{4};
  EventBus events;
  ExperimentService service;
};

}  // namespace

TEST_CASE("fake source: create, destroy and recovery reach the injected executor") {
  test::TempDir dir{"blade-router-service"};
  FakeSource source;
  std::string left_running;
  {
    Service s(dir / "blade.db", source);
    CreateRequest r;
    r.target = "fake";
    r.action = "p";  // the alias: the stored action is canonical
    r.flags = {{"n", "3"}};
    auto x = s.service.create(r).experiment;
    CHECK(x.status == ExperimentStatus::Running);
    CHECK(x.executor == "inprocess:fake");
    CHECK(x.action == "poke");
    REQUIRE(source.executor->created().size() == 1);
    CHECK(source.executor->created()[0].flags.at("n") == "3");

    // The spec the source hands out is the one flags are checked against.
    r.flags = {{"n", "11"}};
    CHECK_THROWS_AS(s.service.create(r), Error);
    CHECK(source.executor->created().size() == 1);
    r.target = "nothing";
    CHECK_THROWS_AS(s.service.create(r), Error);

    auto d = s.service.destroy(x.uid);
    CHECK(d.experiment.status == ExperimentStatus::Destroyed);
    REQUIRE(source.executor->destroyed().size() == 1);
    CHECK(source.executor->destroyed()[0].restore_json.value_or("") ==
          nlohmann::json{{"undo", x.uid}}.dump());

    r.target = "fake";
    r.flags = {{"n", "1"}};
    left_running = s.service.create(r).experiment.uid;

    // A plugin change asks whether "fake" is in use: the running one is.
    bool fake_in_use = false, other_in_use = true;
    s.service.change_plugins([&](const auto &in_use) {
      fake_in_use = in_use("fake");
      other_in_use = in_use("other");
      return ReloadReport{};
    });
    CHECK(fake_in_use);
    CHECK_FALSE(other_in_use);
  }
  // A new daemon over the same store: recovery destroys what was running.
  Service s(dir / "blade.db", source);
  auto report = s.service.recover();
  CHECK(report.destroyed == 1);
  CHECK(report.failed == 0);
  CHECK(source.executor->destroyed().size() == 2);
  CHECK(source.executor->destroyed().back().uid == left_running);
  CHECK(s.service.get(left_running).status == ExperimentStatus::Destroyed);
}

TEST_CASE("a create in flight with no row yet keeps its plugin in use for a reload") {
  test::TempDir dir{"blade-router-inflight"};
  FakeSource source;
  source.executor->direct = true;
  std::promise<void> entered, release;
  auto released = release.get_future().share();
  source.executor->during_create = [&] {
    entered.set_value();
    released.wait();
  };
  Service s(dir / "blade.db", source);
  CreateRequest r;
  r.target = "fake";
  r.action = "poke";
  auto creating = std::async(std::launch::async, [&] { return s.service.create(r); });
  entered.get_future().wait();
  // The call is under way on the creating thread and nothing is stored.
  CHECK(s.store.list_experiments({}).total == 0);
  bool in_use = false;
  s.service.change_plugins([&](const auto &used) {
    in_use = used("fake");
    return ReloadReport{};
  });
  CHECK(in_use);
  release.set_value();
  auto x = creating.get().experiment;
  CHECK(x.status == ExperimentStatus::Running);
  CHECK(s.store.get_experiment(x.uid)->status == ExperimentStatus::Running);
  s.service.destroy(x.uid);
  // Nothing in flight, nothing active: the plugin is free to go.
  s.service.change_plugins([&](const auto &used) {
    in_use = used("fake");
    return ReloadReport{};
  });
  CHECK_FALSE(in_use);
}

TEST_CASE("recovery destroys all 2,500 experiments a crash left in created") {
  test::TempDir dir{"blade-router-recovery"};
  FakeSource source;
  constexpr int kLeft = 2500;
  std::set<std::string> uids;
  {
    // Rows as a crash mid-create leaves them: inserted, never answered;
    // every third one with a restore record written ahead.
    Store store(dir / "blade.db");
    const auto now = std::chrono::floor<std::chrono::milliseconds>(
        std::chrono::system_clock::now());
    for (int i = 0; i < kLeft; ++i) {
      Experiment e;
      e.uid = new_uid();
      e.target = "fake";
      e.action = "poke";
      e.flags = {{"n", std::to_string(i % 10)}};
      e.executor = "inprocess:fake";
      e.created_at = e.updated_at = now;
      store.insert_experiment(e);
      if (i % 3 == 0) store.save_restore_record(e, R"({"step":1})", now);
      uids.insert(e.uid);
    }
    REQUIRE(uids.size() == kLeft);
    REQUIRE(store.created_experiments().size() == kLeft);
  }

  const auto start = std::chrono::steady_clock::now();
  Service s(dir / "blade.db", source);
  auto report = s.service.recover();
  const auto took = std::chrono::steady_clock::now() - start;
  MESSAGE("recovered " << kLeft << " in "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                       << " ms");

  CHECK(report.destroyed == kLeft);
  CHECK(report.failed == 0);
  CHECK(report.quarantined == 0);
  // The executor was called once for each, with the record written ahead.
  std::map<std::string, int> calls;
  int with_record = 0;
  for (const auto &r : source.executor->destroyed()) {
    ++calls[r.uid];
    with_record += r.restore_json.value_or("") == R"({"step":1})";
  }
  CHECK(calls.size() == uids.size());
  CHECK(std::all_of(calls.begin(), calls.end(), [&](const auto &c) {
    return c.second == 1 && uids.count(c.first) == 1;
  }));
  CHECK(with_record == (kLeft + 2) / 3);
  // Every row is destroyed, none left created.
  auto counts = s.store.count_experiments_by_status();
  CHECK(counts[ExperimentStatus::Destroyed] == kLeft);
  CHECK(counts.count(ExperimentStatus::Created) == 0);
  CHECK(s.store.created_experiments().empty());
  // A second start finds nothing left to do.
  CHECK(s.service.recover().destroyed == 0);
  CHECK(took < std::chrono::seconds(30));
}
