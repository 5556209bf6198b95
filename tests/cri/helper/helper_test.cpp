// blade-cri-helper through HelperSession, as cri.so runs it, against a fake
// container (fake_container.hpp: real namespaces, a real cgroup): real
// os and network faults inside it, their effects measured from the host,
// and nothing left behind.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../../../plugins/cri/src/helper_session.hpp"
#include "../../network/veth_link.hpp"
#include "../../support/eventually.hpp"
#include "../../support/temp_dir.hpp"
#include "fake_container.hpp"
#include "test_call.hpp"

using namespace blade;
using namespace blade::cri;
using blade::test::eventually;
using blade::test::net::output_of;
using blade::test::TempDir;
using blade::test::cri::FakeContainer;
using blade::test::cri::read_all;
using blade::test::cri::TestCall;
namespace fs = std::filesystem;

namespace {

constexpr const char *kUid = "c0ffee00c0ffee01";

// What the helper told the plugin, as the hooks saw it.
struct Seen {
  std::mutex mu;
  std::vector<std::string> records, reports, logs, ended;
  std::function<void(const std::string &)> on_record;  // runs inside save_restore

  HelperHooks hooks() {
    HelperHooks h;
    h.save_restore = [this](const std::string &r) {
      if (on_record) on_record(r);
      std::lock_guard lock(mu);
      records.push_back(r);
    };
    h.report = [this](const std::string &r) {
      std::lock_guard lock(mu);
      reports.push_back(r);
    };
    h.log = [this](blade_log_level, const std::string &m) {
      std::lock_guard lock(mu);
      logs.push_back(m);
    };
    h.fault_ended = [this](const std::string &why) {
      std::lock_guard lock(mu);
      ended.push_back(why);
    };
    return h;
  }
  std::size_t ended_count() {
    std::lock_guard lock(mu);
    return ended.size();
  }
};

HelperRequest request(const FakeContainer &c, const TempDir &state, std::string op,
                      std::string target, std::string action,
                      std::vector<std::pair<std::string, std::string>> flags) {
  HelperRequest r;
  r.op = std::move(op);
  r.uid = kUid;
  r.target = std::move(target);
  r.action = std::move(action);
  r.flags = std::move(flags);
  r.enter.pid = c.pid();
  r.enter.start = c.start();
  r.state_dir = (state.path() / "containers" / "fake").string();
  r.daemon_pid = ::getpid();
  r.deadline_ms = 15000;
  return r;
}

// file delete of the marker, entering the container's mnt and pid
// namespaces as cri.so does for file faults.
HelperRequest delete_marker(const FakeContainer &c, const TempDir &state, std::string op = "create") {
  HelperRequest r = request(c, state, std::move(op), "file", "delete", {{"filepath", c.marker()}});
  r.enter.mnt = r.enter.pid_ns = true;
  return r;
}

std::string describe(const HelperDone &d) {
  return "status " + std::to_string(d.status) + ": " + d.error;
}

bool gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

// The helper's own children (the one forked into the pid namespace).
std::vector<pid_t> children_of(pid_t pid) {
  const std::string p = std::to_string(pid);
  std::vector<pid_t> out;
  std::istringstream s(read_all("/proc/" + p + "/task/" + p + "/children"));
  for (long c; s >> c;)
    out.push_back(static_cast<pid_t>(c));
  return out;
}

bool contains(const std::vector<pid_t> &v, pid_t p) {
  return std::find(v.begin(), v.end(), p) != v.end();
}

std::string nft_tables_in_netns_of(pid_t pid) {
  return output_of({"nsenter", "--net=/proc/" + std::to_string(pid) + "/ns/net", "nft", "list",
                    "tables"});
}

// Declared before the fake container, so it checks after the container
// and every session went: the cgroup dirs removed, no helper of this test
// process left running.
struct NothingLeft {
  ~NothingLeft() {
    for (const auto &h : blade::test::cri::kHierarchies)
      CHECK_MESSAGE(!fs::exists(blade::test::cri::test_cgroup_dir(h)), h << " cgroup left behind");
    for (const auto &e : fs::directory_iterator("/proc")) {
      const std::string name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      const std::string stat = read_all("/proc/" + name + "/stat");
      const auto close = stat.rfind(')');
      if (close == std::string::npos || stat.find("(blade-cri-helpe") == std::string::npos)
        continue;
      std::istringstream rest(stat.substr(close + 2));
      std::string state;
      long ppid = 0;
      rest >> state >> ppid;
      CHECK_MESSAGE(ppid != ::getpid(), "helper " << name << " was left running");
    }
  }
};

// The host's copy of the marker path: a file of the same name that the
// fault must not touch. Removed at the end.
struct HostMarker {
  std::string path;
  explicit HostMarker(std::string p) : path(std::move(p)) { std::ofstream(path) << "host\n"; }
  ~HostMarker() { ::unlink(path.c_str()); }
};

std::uint64_t cpuacct_usage_ns(const FakeContainer &c) {
  return std::stoull(read_all(c.cgroup_dir("cpuacct") + "/cpuacct.usage"));
}

}  // namespace

TEST_CASE("file delete inside the container's mount namespace only; destroy restores it") {
  NothingLeft after;
  TempDir state("blade-cri-helper");
  {
    FakeContainer ctr;
    HostMarker host(ctr.marker());
    REQUIRE(read_all(ctr.inside(ctr.marker())) == "inside\n");

    HelperRequest req = delete_marker(ctr, state);
    Seen seen;
    // Write-ahead: the record reaches the plugin before the file is moved.
    bool present_at_record = false;
    seen.on_record = [&](const std::string &) {
      present_at_record = fs::exists(ctr.inside(ctr.marker()));
    };
    auto session = HelperSession::start(BLADE_CRI_HELPER_PATH, req, seen.hooks());
    TestCall tc;
    HelperDone d = session->wait_done(tc.call());
    REQUIRE_MESSAGE(d.status == BLADE_STATUS_OK, describe(d));
    CHECK(session->pid() > 0);
    CHECK(session->start_time() > 0);
    CHECK(session->alive());
    REQUIRE_FALSE(seen.records.empty());
    CHECK(present_at_record);
    CHECK(seen.records.back().find(ctr.marker()) != std::string::npos);
    CHECK_FALSE(fs::exists(ctr.inside(ctr.marker())));
    CHECK(read_all(host.path) == "host\n");  // the host's file of that name untouched
    // The moved file is kept on the host's disk, in the state dir (fd 4).
    CHECK_FALSE(fs::is_empty(req.state_dir));

    HelperDone undone = session->destroy(tc.call());
    REQUIRE_MESSAGE(undone.status == BLADE_STATUS_OK, describe(undone));
    CHECK(read_all(ctr.inside(ctr.marker())) == "inside\n");
    CHECK(read_all(host.path) == "host\n");
    CHECK(eventually([&] { return !session->alive(); }, std::chrono::seconds(5)));
  }
}

TEST_CASE("a fault that outlives its helper is undone by a fresh helper from the record") {
  NothingLeft after;
  TempDir state("blade-cri-helper");
  FakeContainer ctr;
  HelperRequest req = delete_marker(ctr, state);
  Seen seen;
  TestCall tc;
  std::string record;
  {
    auto session = HelperSession::start(BLADE_CRI_HELPER_PATH, req, seen.hooks());
    HelperDone d = session->wait_done(tc.call());
    REQUIRE_MESSAGE(d.status == BLADE_STATUS_OK, describe(d));
    record = d.restore_json;
  }  // the session's end (the daemon gone): the helper exits, the file stays moved
  CHECK_FALSE(fs::exists(ctr.inside(ctr.marker())));

  HelperRequest undo = req;
  undo.op = "destroy";
  undo.restore_json = record;
  auto fresh = HelperSession::start(BLADE_CRI_HELPER_PATH, undo, seen.hooks());
  HelperDone d = fresh->wait_done(tc.call());
  REQUIRE_MESSAGE(d.status == BLADE_STATUS_OK, describe(d));
  CHECK(read_all(ctr.inside(ctr.marker())) == "inside\n");
  CHECK(eventually([&] { return !fresh->alive(); }, std::chrono::seconds(5)));
}

TEST_CASE("a record the plugin cannot store stops the fault before its step") {
  NothingLeft after;
  TempDir state("blade-cri-helper");
  FakeContainer ctr;
  HelperRequest req = delete_marker(ctr, state);
  Seen seen;
  HelperHooks hooks = seen.hooks();
  hooks.save_restore = [](const std::string &) { throw std::runtime_error("the store is full"); };
  auto session = HelperSession::start(BLADE_CRI_HELPER_PATH, req, hooks);
  TestCall tc;
  HelperDone d = session->wait_done(tc.call());
  CHECK(d.status != BLADE_STATUS_OK);
  CHECK_MESSAGE(d.error.find("restore record") != std::string::npos, d.error);
  CHECK(read_all(ctr.inside(ctr.marker())) == "inside\n");
}

TEST_CASE("network drop in the container's netns only; destroy removes its table") {
  NothingLeft after;
  TempDir state("blade-cri-helper");
  FakeContainer ctr;
  const std::string table = std::string("blade_") + kUid;
  REQUIRE_MESSAGE(output_of({"nft", "list", "tables"}).find(table) == std::string::npos,
                  "a table " << table << " is on the host before the test");
  HelperRequest req = request(ctr, state, "create", "network", "drop",
                              {{"destination-port", "9"}, {"protocol", "tcp"}});
  req.enter.net = true;  // no pid namespace: the fault runs in the helper itself
  Seen seen;
  auto session = HelperSession::start(BLADE_CRI_HELPER_PATH, req, seen.hooks());
  TestCall tc;
  HelperDone d = session->wait_done(tc.call());
  REQUIRE_MESSAGE(d.status == BLADE_STATUS_OK, describe(d));
  const std::string inside = nft_tables_in_netns_of(ctr.pid());
  CHECK_MESSAGE(inside.find(table) != std::string::npos, "tables in the container: " << inside);
  CHECK(output_of({"nft", "list", "tables"}).find(table) == std::string::npos);

  HelperDone undone = session->destroy(tc.call());
  REQUIRE_MESSAGE(undone.status == BLADE_STATUS_OK, describe(undone));
  CHECK(nft_tables_in_netns_of(ctr.pid()).find(table) == std::string::npos);
  CHECK(output_of({"nft", "list", "tables"}).find(table) == std::string::npos);
}

TEST_CASE("cpu fullload joins the container's cgroups and is charged there") {
  NothingLeft after;
  TempDir state("blade-cri-helper");
  {
    FakeContainer ctr;
    HelperRequest req = request(ctr, state, "create", "cpu", "fullload",
                                {{"cpu-count", "1"}, {"cpu-percent", "100"}});
    req.enter.cgroup = true;
    req.enter.pid_ns = true;
    Seen seen;
    auto session = HelperSession::start(BLADE_CRI_HELPER_PATH, req, seen.hooks());
    TestCall tc;
    HelperDone d = session->wait_done(tc.call());
    REQUIRE_MESSAGE(d.status == BLADE_STATUS_OK, describe(d));
    const std::vector<pid_t> kids = children_of(session->pid());
    REQUIRE(kids.size() == 1);
    for (const auto &h : blade::test::cri::kHierarchies) {
      const auto in = ctr.cgroup_pids(h);
      CHECK_MESSAGE(contains(in, session->pid()), "helper not in " << h);
      CHECK_MESSAGE(contains(in, kids[0]), "the helper's worker not in " << h);
    }
    const std::uint64_t before = cpuacct_usage_ns(ctr);
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const double used_s = static_cast<double>(cpuacct_usage_ns(ctr) - before) / 1e9;
    const double wall_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE("cpuacct.usage of the fake container grew " << used_s << " s in " << wall_s
                                                        << " s with one burner");
    // One burner on a shared 2-core machine: well above idle, whatever
    // else runs.
    CHECK(used_s > 0.15 * wall_s);

    HelperDone undone = session->destroy(tc.call());
    REQUIRE_MESSAGE(undone.status == BLADE_STATUS_OK, describe(undone));
    CHECK(eventually([&] { return ctr.cgroup_pids("cpu") == std::vector<pid_t>{ctr.pid()}; },
                     std::chrono::seconds(5)));
  }
}

TEST_CASE("cpu-percent in a container is of its quota: 50 of 0.5 cpu is a quarter core") {
  NothingLeft after;
  TempDir state("blade-cri-helper");
  FakeContainer ctr;
  ctr.limit_cpu(0.5);
  HelperRequest req = request(ctr, state, "create", "cpu", "fullload",
                              {{"cpu-count", "1"}, {"cpu-percent", "50"}});
  req.enter.cgroup = req.enter.pid_ns = true;
  // What cri.so passes for cpu and mem faults: the inner load is judged by
  // the cgroup the helper joined.
  req.config_json = R"({"cpu_meter":"cgroup","mem_meter":"cgroup"})";
  Seen seen;
  auto session = HelperSession::start(BLADE_CRI_HELPER_PATH, req, seen.hooks());
  TestCall tc;
  HelperDone d = session->wait_done(tc.call());
  REQUIRE_MESSAGE(d.status == BLADE_STATUS_OK, describe(d));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the feedback loop settles
  const std::uint64_t before = cpuacct_usage_ns(ctr);
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const double cores = static_cast<double>(cpuacct_usage_ns(ctr) - before) / 1e9 /
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("cpu-percent 50 in a fake container limited to 0.5 cpu: " << cores << " cores; result "
                                                                     << d.result_json);
  CHECK(cores > 0.15);
  CHECK(cores < 0.35);
  HelperDone undone = session->destroy(tc.call());
  CHECK_MESSAGE(undone.status == BLADE_STATUS_OK, describe(undone));
}

TEST_CASE("the session's end ends the helper and its worker; a dead holder is reported") {
  NothingLeft after;
  TempDir state("blade-cri-helper");
  FakeContainer ctr;
  HelperRequest req = request(ctr, state, "create", "cpu", "fullload", {{"cpu-count", "1"}});
  req.enter.cgroup = req.enter.pid_ns = true;
  TestCall tc;

  SUBCASE("closing the session") {
    Seen seen;
    auto session = HelperSession::start(BLADE_CRI_HELPER_PATH, req, seen.hooks());
    HelperDone d = session->wait_done(tc.call());
    REQUIRE_MESSAGE(d.status == BLADE_STATUS_OK, describe(d));
    const pid_t helper = session->pid();
    const std::vector<pid_t> kids = children_of(helper);
    REQUIRE(kids.size() == 1);
    session.reset();
    CHECK(gone(helper));
    CHECK(eventually([&] { return gone(kids[0]); }, std::chrono::seconds(3)));
    CHECK(seen.ended_count() == 0);  // the plugin ended it: not "ended on its own"
  }
  SUBCASE("the worker killed while the fault is held") {
    Seen seen;
    auto session = HelperSession::start(BLADE_CRI_HELPER_PATH, req, seen.hooks());
    HelperDone d = session->wait_done(tc.call());
    REQUIRE_MESSAGE(d.status == BLADE_STATUS_OK, describe(d));
    const std::vector<pid_t> kids = children_of(session->pid());
    REQUIRE(kids.size() == 1);
    ::kill(kids[0], SIGKILL);
    REQUIRE(eventually([&] { return seen.ended_count() == 1; }, std::chrono::seconds(5)));
    CHECK_MESSAGE(seen.ended[0].find("exited with status 137") != std::string::npos,
                  seen.ended[0]);
    CHECK_FALSE(session->alive());
    HelperDone undone = session->destroy(tc.call());
    CHECK(undone.status == BLADE_STATUS_FAILED_PRECONDITION);
  }
}

TEST_CASE("a reused or gone init pid is refused before anything is entered") {
  NothingLeft after;
  TempDir state("blade-cri-helper");
  FakeContainer ctr;
  HelperRequest req = request(ctr, state, "create", "cpu", "fullload", {{"cpu-count", "1"}});
  req.enter.cgroup = req.enter.pid_ns = req.enter.mnt = req.enter.net = true;
  SUBCASE("another start time") { req.enter.start = ctr.start() + 1; }
  SUBCASE("no such process") {
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    ::waitpid(child, nullptr, 0);
    req.enter.pid = child;
  }
  Seen seen;
  auto session = HelperSession::start(BLADE_CRI_HELPER_PATH, req, seen.hooks());
  TestCall tc;
  HelperDone d = session->wait_done(tc.call());
  CHECK(d.status == BLADE_STATUS_FAILED_PRECONDITION);
  CHECK_MESSAGE(d.error == "container init " + std::to_string(req.enter.pid) + " is gone", d.error);
  CHECK_FALSE(fs::exists(req.state_dir));  // refused before the state dir was made
  CHECK(ctr.cgroup_pids("cpu") == std::vector<pid_t>{ctr.pid()});
}

TEST_CASE("bad requests are answered with an error, not a crash") {
  NothingLeft after;
  TempDir state("blade-cri-helper");
  FakeContainer ctr;
  TestCall tc;
  Seen seen;
  SUBCASE("a target no fault family has") {
    HelperRequest req = request(ctr, state, "create", "nosuch", "thing", {});
    auto session = HelperSession::start(BLADE_CRI_HELPER_PATH, req, seen.hooks());
    HelperDone d = session->wait_done(tc.call());
    CHECK(d.status == BLADE_STATUS_NOT_SUPPORTED);
    CHECK_MESSAGE(d.error.find("nosuch thing") != std::string::npos, d.error);
    CHECK(eventually([&] { return !session->alive(); }, std::chrono::seconds(5)));
  }
  SUBCASE("a flag value the fault refuses, named") {
    HelperRequest req = request(ctr, state, "create", "cpu", "fullload", {{"cpu-percent", "abc"}});
    req.enter.pid_ns = true;
    auto session = HelperSession::start(BLADE_CRI_HELPER_PATH, req, seen.hooks());
    HelperDone d = session->wait_done(tc.call());
    CHECK(d.status == BLADE_STATUS_INVALID_ARGUMENT);
    CHECK_MESSAGE(d.error.find("cpu-percent") != std::string::npos, d.error);
  }
  SUBCASE("a dry run answers its plan and changes nothing") {
    HelperRequest req = delete_marker(ctr, state, "dry_run");
    auto session = HelperSession::start(BLADE_CRI_HELPER_PATH, req, seen.hooks());
    HelperDone d = session->wait_done(tc.call());
    REQUIRE_MESSAGE(d.status == BLADE_STATUS_OK, describe(d));
    CHECK_MESSAGE(d.plan_json.find(ctr.marker()) != std::string::npos, d.plan_json);
    CHECK(read_all(ctr.inside(ctr.marker())) == "inside\n");
  }
  SUBCASE("a helper that is not there") {
    HelperRequest req = request(ctr, state, "create", "cpu", "fullload", {});
    CHECK_THROWS_AS(HelperSession::start("/nonexistent/blade-cri-helper", req, seen.hooks()),
                    sdk::Error);
  }
  SUBCASE("a call the host cancelled: the helper is killed") {
    HelperRequest req = request(ctr, state, "create", "cpu", "fullload", {{"cpu-count", "1"}});
    req.enter.pid_ns = true;
    auto session = HelperSession::start(BLADE_CRI_HELPER_PATH, req, seen.hooks());
    tc.cancel();
    HelperDone d = session->wait_done(tc.call());
    CHECK(d.status == BLADE_STATUS_CANCELLED);
    CHECK_FALSE(session->alive());
  }
  SUBCASE("a call whose deadline passed: the helper is killed") {
    HelperRequest req = request(ctr, state, "create", "cpu", "fullload", {{"cpu-count", "1"}});
    req.enter.pid_ns = true;
    auto session = HelperSession::start(BLADE_CRI_HELPER_PATH, req, seen.hooks());
    TestCall late(std::chrono::milliseconds(0));
    HelperDone d = session->wait_done(late.call());
    CHECK(d.status == BLADE_STATUS_TIMEOUT);
    CHECK_FALSE(session->alive());
  }
}
