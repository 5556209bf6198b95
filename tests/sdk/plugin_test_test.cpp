// Tests of the SDK's host stand-in (blade/plugin_test.hpp) itself: that it
// refuses what bladed refuses, mirrors the host API's contract (JSON
// outputs, write-ahead records, cancellation, deadlines, fault_ended), and
// reports the misuse it promises to. The probe plugin below is linked in;
// the loader cases dlopen the real test plugins from build/tests/plugins.
#include <blade/counters.hpp>
#include <blade/plugin.hpp>
#include <blade/plugin_test.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bt = blade::sdk::testing;

namespace {

constexpr const char *kProbeSpec = R"yaml(
version: v1
kind: plugin
items:
- target: probe
  shortDesc: host API probe
  scope: host
  actions:
  - action: run
    shortDesc: does what its mode flag says
    flags:
    - name: mode
)yaml";

// create does what the `mode` flag names, so each test drives one corner of
// the host API through the real C ABI.
class Probe {
 public:
  explicit Probe(blade::sdk::Host host) : host_(host) {}
  ~Probe() {
    for (auto &t : threads_) t.join();
  }

  blade::sdk::Outcome create(const blade::sdk::Request &req, blade::sdk::Call &call) {
    const std::string mode = req.flag_or("mode", "");
    const std::string uid(req.uid());
    // Topics (ABI 1.5): each document received is reported back as the
    // uid's counters, {"doc": <document>} with the number seen so far.
    if (mode == "follow" || mode == "follow-reenter") {
      auto seen = std::make_shared<std::uint64_t>(0);
      const bool reenter = mode == "follow-reenter";
      auto sub = host_.subscribe("rules", [this, uid, seen, reenter](std::string_view json) {
        if (reenter) host_.subscribe("rules", [](std::string_view) {});  // misuse: refused
        host_.report_counters(uid, blade::sdk::counters_json(
                                       {{{{"doc", std::string(json)}}, {{"seen", ++*seen}}}}));
      });
      std::lock_guard lock(mu_);
      subs_[uid] = std::move(sub);
    }
    if (mode == "follow-unknown") host_.subscribe("nope", [](std::string_view) {});
    if (mode == "follow-leak") {  // never unsubscribes: the host ends it after shutdown
      const blade_host_api *api = host_.api();
      api->subscribe(host_.handle(), "rules",
                     [](void *, const char *, const char *, std::size_t) {}, nullptr);
    }
    if (mode == "count") {  // counts to 50 from a thread of its own
      auto host = host_;
      std::lock_guard lock(mu_);
      threads_.emplace_back([host, uid] {
        for (std::uint64_t n = 1; n <= 50; ++n)
          host.report_counters(uid, blade::sdk::counters_json({{{{"rule", "r/0"}}, {{"total_requests", n}}}}));
      });
    }
    if (mode == "count-then-fail") {
      host_.report_counters(uid, R"({"series":[{"counters":{"errors":1}}]})");
      throw blade::sdk::FailedPrecondition("failed after counting");
    }
    if (mode == "count-bad") {
      const bool good = host_.report_counters(uid, R"({"series":[{"counters":{"errors":1}}]})");
      const bool bad = host_.report_counters(uid, R"({"series":[{"counters":{"errors":-1}}]})");
      return {std::string(R"({"good":)") + (good ? "true" : "false") + R"(,"bad":)" +
                  (bad ? "true" : "false") + "}",
              "{}"};
    }
    if (mode == "loop") {  // progress until cancelled, then fail as a plugin should
      for (int i = 0;; ++i) {
        call.progress(i % 101, "step " + std::to_string(i));
        call.check();
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    if (mode == "remaining") return {std::to_string(call.remaining_ms()), "{}"};
    if (mode == "save-then-fail") {
      call.save_restore(R"({"step":1})");
      call.save_restore(R"({"step":2})");
      throw blade::sdk::FailedPrecondition("failed after step 2");
    }
    if (mode == "save-bad") call.save_restore("{nope");
    if (mode == "bad-result") return {"not json", "{}"};
    if (mode == "bad-progress") call.progress(150);
    if (mode == "ended-later") {
      std::string uid(req.uid());
      auto host = host_;
      std::thread([host, uid] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        host.fault_ended(uid, "timer ran out");
      }).detach();
    }
    if (mode == "ended-stranger") host_.fault_ended("0123456789abcdef", "not mine");
    if (mode == "report-in-create") call.report("{}");  // destroy only: throws
    host_.info("create " + mode);
    return {R"({"mode":)" + blade::sdk::json_quote(mode) + "}", R"({"made":true})"};
  }

  void destroy(const blade::sdk::Request &req, blade::sdk::Call &call) {
    {
      blade::sdk::TopicSubscription ending;  // unsubscribes outside the lock
      std::lock_guard lock(mu_);
      if (auto it = subs_.find(std::string(req.uid())); it != subs_.end()) {
        ending = std::move(it->second);
        subs_.erase(it);
      }
    }
    last_restore_ = std::string(req.restore_json().value_or("(null)"));
    host_.info("destroy restore=" + last_restore_);
    const std::string mode = req.flag_or("mode", "");
    if (mode == "save-in-destroy") call.save_restore("{}");
    // The destroy's report (ABI 1.4); what report() answered goes in the
    // next one, so the test sees it.
    if (mode == "report") call.report(R"({"found":"gone"})");
    if (mode == "report-array") {
      const bool taken = call.report("[1]");
      call.report(std::string(R"({"array_taken":)") + (taken ? "true" : "false") + "}");
    }
    if (mode == "report-then-fail") {
      call.report(R"({"partial":true})");
      throw blade::sdk::FailedPrecondition("half undone");
    }
  }

  std::string dry_run(const blade::sdk::Request &req, blade::sdk::Call &) {
    return R"({"would":)" + blade::sdk::json_quote(req.flag_or("mode", "")) + "}";
  }

 private:
  blade::sdk::Host host_;
  std::string last_restore_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
  // Last: ended first, while what their functions touch still exists.
  std::map<std::string, blade::sdk::TopicSubscription> subs_;
};

}  // namespace

BLADE_PLUGIN(Probe, "probe", "1.0.0", kProbeSpec)

namespace {

std::string plugin_path(const char *name) { return std::string(BLADE_TEST_PLUGIN_DIR "/") + name + ".so"; }

bool is_dir(const std::string &p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

TEST_CASE("json_valid accepts JSON and refuses the rest") {
  for (const char *good : {"{}", "[]", " {\"a\": [1, -2.5e+3, true, false, null, \"x\\u00e9\\n\"]} ",
                           "0", "\"s\"", "{\"a\":{\"b\":{}}}"})
    CHECK_MESSAGE(bt::json_valid(good), good);
  for (const char *bad : {"", " ", "{", "{not json", "{'a':1}", "[1,]", "{\"a\":1,}", "01", "1.",
                          "-", "\"\x01\"", "\"\\x\"", "tru", "{} {}", "[1 2]", "{\"a\" 1}", "nul"})
    CHECK_MESSAGE(!bt::json_valid(bad), bad);
  std::string deep(64, '[');
  deep += std::string(64, ']');
  CHECK(bt::json_valid(deep));
  CHECK(!bt::json_valid("[" + deep + "]"));
}

TEST_CASE("the descriptor checks bladed makes refuse bad plugins") {
  auto refusal = [](const char *name) {
    try {
      bt::Host::load(plugin_path(name));
    } catch (const std::exception &e) {
      return std::string(e.what());
    }
    return std::string("(loaded)");
  };
  CHECK(refusal("caps_mismatch").find("DRY_RUN is set but dry_run is NULL") != std::string::npos);
  CHECK(refusal("abi_desc_major2").find("ABI major 2") != std::string::npos);
  CHECK(refusal("minor_newer").find("needs ABI minor") != std::string::npos);
  CHECK(refusal("no_entry").find("does not export blade_plugin_entry_v1") != std::string::npos);
  CHECK(refusal("undefined_symbol").find("cannot load") != std::string::npos);
  CHECK(refusal("no_such_plugin").find("cannot load") != std::string::npos);
  CHECK(refusal("noop_a") == "(loaded)");
}

TEST_CASE("init failure throws with the plugin's message") {
  bt::Host host = bt::Host::load(plugin_path("init_fail"));
  try {
    host.start();
    FAIL("start() returned");
  } catch (const std::runtime_error &e) {
    CHECK(std::string(e.what()) == "plugin init failed: FAILED_PRECONDITION: device not ready");
  }
}

TEST_CASE("outputs that are not JSON are refused and make the call not ok") {
  bt::Host host = bt::Host::load(plugin_path("bad_restore"));
  bt::CallResult r = host.start().create("badrestore", "noop");
  CHECK(r.status == BLADE_STATUS_OK);
  CHECK(!r.ok());
  CHECK(r.invalid_outputs == std::vector<std::string>{"RESTORE"});
  CHECK(!r.restore);
  CHECK(r.describe() == "OK [RESTORE output was not JSON]");

  bt::Host probe(BLADE_PLUGIN_ENTRY);
  r = probe.start().create("probe", "run", {{"mode", "bad-result"}});
  CHECK(r.invalid_outputs == std::vector<std::string>{"RESULT"});
  CHECK(r.result.empty());
  CHECK(r.restore == "{}");  // the other outputs still count
}

TEST_CASE("destroy's report (ABI 1.4): the destroy's result, an object, also when destroy fails") {
  bt::Host host(BLADE_PLUGIN_ENTRY);
  bt::Instance &inst = host.start();
  bt::CallResult made = inst.create("probe", "run", {{"mode", "report"}});
  REQUIRE(made.ok());
  bt::CallResult gone = inst.destroy(made);
  CHECK(gone.ok());
  CHECK(gone.result == R"({"found":"gone"})");
  CHECK(inst.destroy(made).result == R"({"found":"gone"})");  // each destroy reports anew
  // A report that is not an object is refused (report() says so) and the
  // call is not ok, so a test catches the plugin's bug.
  bt::CallResult arr = inst.destroy(inst.create("probe", "run", {{"mode", "report-array"}}));
  CHECK(arr.status == BLADE_STATUS_OK);
  CHECK(!arr.ok());
  CHECK(arr.invalid_outputs == std::vector<std::string>{"RESULT"});
  CHECK(arr.result == R"({"array_taken":false})");
  // A destroy that fails keeps what it reported before failing.
  bt::CallResult half = inst.destroy(inst.create("probe", "run", {{"mode", "report-then-fail"}}));
  CHECK(half.status == BLADE_STATUS_FAILED_PRECONDITION);
  CHECK(half.message == "half undone");
  CHECK(half.result == R"({"partial":true})");
  // Outside destroy, report() is a misuse the C++ layer refuses.
  bt::CallResult in_create = inst.create("probe", "run", {{"mode", "report-in-create"}});
  CHECK(in_create.status == BLADE_STATUS_INTERNAL);
  CHECK(in_create.message.find("Call::report is for destroy only") != std::string::npos);
  // A destroy that reports nothing has an empty result.
  CHECK(inst.destroy(inst.create("probe", "run", {{"mode", "x"}})).result.empty());
}

TEST_CASE("host_info: ABI, a private state dir removed with the host, pid, paths, config") {
  std::string state_dir;
  {
    bt::Options opts;
    opts.protected_paths = {"/var/lib/blade"};
    opts.config_json = R"({"level": 3})";
    bt::Host host(BLADE_PLUGIN_ENTRY, opts);
    const blade_host_info &i = host.host_info();
    CHECK(i.abi_major == 1);
    CHECK(i.abi_minor == BLADE_PLUGIN_ABI_MINOR);
    CHECK(i.daemon_pid == ::getpid());
    state_dir = i.state_dir;
    CHECK(is_dir(state_dir));
    REQUIRE(i.protected_paths[0] != nullptr);
    CHECK(state_dir.rfind(i.protected_paths[0], 0) == 0);  // the state dir is protected
    REQUIRE(i.protected_paths[1] != nullptr);
    CHECK(std::string(i.protected_paths[1]) == "/var/lib/blade");
    CHECK(i.protected_paths[2] == nullptr);
    CHECK(std::string(i.config_json) == R"({"level": 3})");
    CHECK_THROWS_AS(host.set_config_json("[1]"), std::invalid_argument);
    host.set_config_json(R"({"level": 4})");
    CHECK(std::string(host.host_info().config_json) == R"({"level": 4})");
    host.start();
    CHECK_THROWS_AS(host.set_config_json("{}"), std::logic_error);
    CHECK_THROWS_AS(host.start(), std::logic_error);
  }
  CHECK(!is_dir(state_dir));
  bt::Options bad;
  bad.config_json = "{oops";
  CHECK_THROWS_AS(bt::Host(BLADE_PLUGIN_ENTRY, bad), std::invalid_argument);
}

TEST_CASE("requests carry a fresh 16-hex uid, the scope, and destroy repeats them") {
  bt::Host host(BLADE_PLUGIN_ENTRY);
  bt::Instance &inst = host.start();
  bt::CallResult a = inst.create("probe", "run", {{"mode", "x"}});
  bt::CallResult b = inst.create("probe", "run", {{"mode", "x"}}, bt::CallOptions().with_scope("container"));
  CHECK(a.ok());
  CHECK(bt::detail::is_uid(a.uid));
  CHECK(a.uid != b.uid);
  CHECK(a.scope == "host");
  CHECK(b.scope == "container");
  CHECK(a.result == R"({"mode":"x"})");
  bt::CallResult d = inst.destroy(a);
  CHECK(d.uid == a.uid);
  CHECK(d.scope == "host");
  CHECK(d.flags == a.flags);
  CHECK(host.logged(R"(destroy restore={"made":true})"));
  CHECK_THROWS_AS(inst.create("probe", "run", {}, bt::CallOptions().with_uid("ABC")), std::invalid_argument);
  bt::CallResult plan = inst.dry_run("probe", "run", {{"mode", "y"}});
  CHECK(plan.ok());
  CHECK(plan.plan == R"({"would":"y"})");
}

TEST_CASE("save_restore keeps the last record; destroy gets it when create failed") {
  bt::Host host(BLADE_PLUGIN_ENTRY);
  bt::Instance &inst = host.start();
  bt::CallResult r = inst.create("probe", "run", {{"mode", "save-then-fail"}});
  CHECK(r.status == BLADE_STATUS_FAILED_PRECONDITION);
  CHECK(r.message == "failed after step 2");
  CHECK(r.saved_restores == std::vector<std::string>{R"({"step":1})", R"({"step":2})"});
  CHECK(r.restore == R"({"step":2})");
  host.restart();
  CHECK(inst.destroy(r).ok());
  CHECK(host.logged(R"(destroy restore={"step":2})"));

  // Not JSON: refused, and the C++ layer fails the create.
  r = inst.create("probe", "run", {{"mode", "save-bad"}});
  CHECK(r.status == BLADE_STATUS_INTERNAL);
  CHECK(r.saved_restores.empty());
  CHECK(!r.restore);
  CHECK(host.violations().empty());

  // Outside create: FAILED_PRECONDITION, and reported as a misuse.
  bt::CallResult d = inst.destroy("probe", "run", {{"mode", "save-in-destroy"}}, std::nullopt,
                                  bt::CallOptions().with_uid("00000000000000aa"));
  CHECK(d.status == BLADE_STATUS_FAILED_PRECONDITION);
  CHECK(host.logged("destroy restore=(null)"));
  REQUIRE(host.violations().size() == 1);
  CHECK(host.violations()[0] == "save_restore outside create");
}

TEST_CASE("cancellation: from another thread, after N progress reports, after a delay, at the deadline") {
  bt::Host host(BLADE_PLUGIN_ENTRY);
  bt::Instance &inst = host.start();
  const bt::Flags loop = {{"mode", "loop"}};

  bt::CancelFlag stop;
  std::thread canceller([stop]() mutable {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stop.cancel();
  });
  bt::CallResult r = inst.create("probe", "run", loop, bt::CallOptions().with_cancel(stop));
  canceller.join();
  CHECK(r.status == BLADE_STATUS_CANCELLED);
  CHECK(r.progress.size() >= 2);
  CHECK(r.progress[1].note == "step 1");

  r = inst.create("probe", "run", loop, bt::CallOptions().with_cancel_after_progress(3));
  CHECK(r.status == BLADE_STATUS_CANCELLED);
  CHECK(r.progress.size() == 3);

  r = inst.create("probe", "run", loop, bt::CallOptions().with_cancel_after(std::chrono::milliseconds(150)));
  CHECK(r.status == BLADE_STATUS_CANCELLED);
  CHECK(r.elapsed >= std::chrono::milliseconds(150));
  CHECK(r.elapsed < std::chrono::milliseconds(5000));

  r = inst.create("probe", "run", loop, bt::CallOptions().with_deadline(std::chrono::milliseconds(120)));
  CHECK(r.status == BLADE_STATUS_CANCELLED);
  CHECK(r.elapsed >= std::chrono::milliseconds(120));

  r = inst.create("probe", "run", {{"mode", "remaining"}}, bt::CallOptions().with_deadline(std::chrono::seconds(30)));
  long long left = std::stoll(r.result);
  CHECK(left > 25000);
  CHECK(left <= 30000);
  r = inst.create("probe", "run", {{"mode", "remaining"}});
  CHECK(r.result == std::to_string(INT64_MAX));
}

TEST_CASE("fault_ended reports can be waited for; strangers and bad progress are misuse") {
  bt::Host host(BLADE_PLUGIN_ENTRY);
  bt::Instance &inst = host.start();
  CHECK(!host.wait_fault_ended("", std::chrono::milliseconds(10)));
  bt::CallResult r = inst.create("probe", "run", {{"mode", "ended-later"}});
  REQUIRE(r.ok());
  auto report = host.wait_fault_ended(r.uid, std::chrono::seconds(10));
  REQUIRE(report);
  CHECK(report->reason == "timer ran out");
  CHECK(host.fault_ended_reports().size() == 1);
  CHECK(host.violations().empty());

  inst.create("probe", "run", {{"mode", "ended-stranger"}});
  inst.create("probe", "run", {{"mode", "bad-progress"}});
  auto v = host.violations();
  REQUIRE(v.size() == 2);
  CHECK(v[0] == "fault_ended for uid '0123456789abcdef', which no create used");
  CHECK(v[1] == "progress 150 is outside 0..100");
}

TEST_CASE("restart swaps the plugin instance behind the same Instance") {
  bt::Host host(BLADE_PLUGIN_ENTRY);
  bt::Instance &inst = host.start();
  CHECK(inst.generation() == 1);
  bt::Instance &again = host.restart();
  CHECK(&again == &inst);
  CHECK(inst.generation() == 2);
  host.stop();
  CHECK(!inst.running());
  CHECK_THROWS_AS(inst.create("probe", "run"), std::logic_error);
  host.start();
  CHECK(inst.running());
}

TEST_CASE("TempDir and the file-system checks") {
  std::string root;
  {
    bt::TempDir dir;
    root = dir.path();
    CHECK(bt::list_dir(root).empty());
    REQUIRE(::mkdir((root + "/sub").c_str(), 0700) == 0);
    FILE *f = std::fopen((root + "/sub/b").c_str(), "w");
    REQUIRE(f != nullptr);
    std::fputs("bytes\n", f);
    std::fclose(f);
    REQUIRE(::symlink("/nonexistent", (root + "/a").c_str()) == 0);
    CHECK(bt::list_dir(root) == std::vector<std::string>{"a", "sub"});
    CHECK(bt::path_exists(root + "/a"));  // a dangling link is still there
    CHECK(bt::read_file(root + "/sub/b") == "bytes\n");
    CHECK(bt::read_file(root + "/missing").empty());
  }
  CHECK(!bt::path_exists(root));  // removed with its subtree
  CHECK(bt::list_dir(root).empty());
}

TEST_CASE("topics (ABI 1.5): current document first, every publish in order, unsubscribe at destroy") {
  bt::Host host(BLADE_PLUGIN_ENTRY);
  bt::Instance &inst = host.start();
  // Like bladed, only a published topic can be followed.
  bt::CallResult early = inst.create("probe", "run", {{"mode", "follow"}});
  CHECK(early.status == BLADE_STATUS_NOT_SUPPORTED);
  CHECK(early.message == "this host does not publish topic 'rules'");

  host.publish("rules", R"({"version":"a"})");
  bt::CallResult r = inst.create("probe", "run", {{"mode", "follow"}});
  REQUIRE(r.ok());
  CHECK(host.subscribers("rules") == 1);
  auto seen = [](std::string doc, int n) {
    return blade::sdk::counters_json({{{{"doc", std::move(doc)}}, {{"seen", std::uint64_t(n)}}}});
  };
  CHECK(host.counters(r.uid) == seen(R"({"version":"a"})", 1));  // delivered before subscribe returned
  host.publish("rules", R"({"version":"b"})");
  CHECK(host.counters(r.uid) == seen(R"({"version":"b"})", 2));  // synchronously
  host.publish("other", "{}");
  CHECK(host.counters(r.uid) == seen(R"({"version":"b"})", 2));  // another topic is not delivered
  CHECK_THROWS_AS(host.publish("rules", "{not json"), std::invalid_argument);

  REQUIRE(inst.destroy(r).ok());
  CHECK(host.subscribers("rules") == 0);   // the plugin unsubscribed
  CHECK_FALSE(host.counters(r.uid));       // and its counters went with the fault
  host.publish("rules", R"({"version":"c"})");
  CHECK_FALSE(host.counters(r.uid));       // nothing delivered after unsubscribe
  CHECK(host.violations().empty());
}

TEST_CASE("topics: unknown topic fails the call; calling back in is misuse; leftovers end at shutdown") {
  bt::Host host(BLADE_PLUGIN_ENTRY);
  bt::Instance &inst = host.start();
  host.publish("rules", "{}");
  bt::CallResult unknown = inst.create("probe", "run", {{"mode", "follow-unknown"}});
  CHECK(unknown.status == BLADE_STATUS_NOT_SUPPORTED);

  // subscribe from inside a delivery would deadlock bladed: refused, and
  // the SDK turns the 0 into an exception it logs instead of unwinding.
  bt::CallResult reenter = inst.create("probe", "run", {{"mode", "follow-reenter"}});
  CHECK(reenter.ok());
  REQUIRE(host.violations().size() == 1);
  CHECK(host.violations()[0] == "subscribe to 'rules' from inside a topic delivery");
  CHECK(host.logged("topic rules: the subscriber threw, the document was not taken: this host "
                    "does not publish topic 'rules'"));
  inst.destroy(reenter);

  REQUIRE(inst.create("probe", "run", {{"mode", "follow-leak"}}).ok());
  CHECK(host.subscribers("rules") == 1);
  host.stop();
  CHECK(host.subscribers("rules") == 0);  // ended by the host once shutdown returned
}

TEST_CASE("report_counters (ABI 1.5): checked as bladed checks, last good kept, forgotten as bladed does") {
  bt::Host host(BLADE_PLUGIN_ENTRY);
  bt::Instance &inst = host.start();
  bt::CallResult r = inst.create("probe", "run", {{"mode", "count"}});
  REQUIRE(r.ok());
  const std::string last =
      blade::sdk::counters_json({{{{"rule", "r/0"}}, {{"total_requests", 50}}}});
  // Reported from the plugin's own thread: wait for the last figure.
  CHECK(host.wait_counters(r.uid, std::chrono::seconds(5),
                           [&](const std::string &json) { return json == last; }) == last);

  bt::CallResult bad = inst.create("probe", "run", {{"mode", "count-bad"}});
  REQUIRE(bad.ok());
  CHECK(bad.result == R"({"good":true,"bad":false})");
  CHECK(host.counters(bad.uid) == R"({"series":[{"counters":{"errors":1}}]})");  // the last good one
  REQUIRE(host.violations().size() == 1);
  CHECK(host.violations()[0] == "report_counters for uid '" + bad.uid +
                                    "' refused: series[0].counters.errors: not a non-negative integer");

  bt::CallResult failed = inst.create("probe", "run", {{"mode", "count-then-fail"}});
  CHECK(failed.status == BLADE_STATUS_FAILED_PRECONDITION);
  CHECK_FALSE(host.counters(failed.uid));  // a failed create leaves no counters

  CHECK(inst.destroy(r).ok());
  CHECK_FALSE(host.counters(r.uid));
  CHECK(host.counters(bad.uid));  // another experiment's stay
}

TEST_CASE("Options::abi_minor: an older host without the newer functions and fields") {
  bt::Options opts;
  opts.abi_minor = 4;
  bt::Host host(BLADE_PLUGIN_ENTRY, opts);
  CHECK(host.host_info().abi_minor == 4);
  CHECK(host.host_info().struct_size == sizeof(blade_host_info));  // 1.3 completed it
  bt::Instance &inst = host.start();
  host.publish("rules", "{}");
  bt::CallResult r = inst.create("probe", "run", {{"mode", "follow"}});
  CHECK(r.status == BLADE_STATUS_NOT_SUPPORTED);
  CHECK(r.message == "following topic 'rules' needs a host with plugin ABI 1.5; this host has ABI 1.4");
  bt::CallResult counted = inst.create("probe", "run", {{"mode", "count-bad"}});
  CHECK(counted.result == R"({"good":false,"bad":false})");  // nothing shown by a 1.4 host
  CHECK(host.subscribers("rules") == 0);

  bt::Options old;
  old.abi_minor = 1;
  bt::Host host11(BLADE_PLUGIN_ENTRY, old);
  CHECK(host11.host_info().struct_size == offsetof(blade_host_info, protected_paths));
  CHECK(host11.host_info().protected_paths == nullptr);

  // A plugin needing 1.5 is refused by a 1.4 host, as bladed 1.4 would.
  blade_plugin_descriptor needs5 = *BLADE_PLUGIN_ENTRY();
  needs5.abi_minor = 5;
  CHECK_THROWS_WITH(bt::detail::validate_descriptor(&needs5, 4),
                    "plugin descriptor refused: needs ABI minor 5, newer than the host's 4");
  CHECK_NOTHROW(bt::detail::validate_descriptor(&needs5, 5));
  opts.abi_minor = BLADE_PLUGIN_ABI_MINOR + 1;
  CHECK_THROWS_AS(bt::Host(BLADE_PLUGIN_ENTRY, opts), std::invalid_argument);
}
