// process load against a real bladed: the processes it starts are counted in
// /proc (by their argv[0], blade-process-load-<uid>), run as the user asked
// (their real and effective uid from /proc/<pid>/status), and are all gone
// after destroy, after a SIGKILL of bladed and its restart, and after a
// crash between two forks (found by their argv[0] alone).
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../../plugins/os/src/proc_table.hpp"
#include "../support/eventually.hpp"
#include "../support/process_state.hpp"
#include "os_test_support.hpp"

using namespace blade::test;
using namespace blade::test::os;
using namespace std::chrono_literals;
namespace proc = blade::os::proc;

namespace {

// Live (not zombie) processes whose argv[0] is the experiment's marker (all
// process loads' with uid "").
std::set<pid_t> load_processes(const std::string &uid) {
  const std::string marker = "blade-process-load-" + uid;
  std::set<pid_t> out;
  for (pid_t pid : proc::list_pids()) {
    auto p = proc::read_process(pid);
    if (!p || p->dead()) continue;
    if (uid.empty() ? p->cmdline.rfind(marker, 0) == 0 : p->cmdline == marker + " infinity")
      out.insert(pid);
  }
  return out;
}

// "Uid:" of /proc/<pid>/status: real, effective, saved, fs.
std::vector<uid_t> uids_of(pid_t pid) {
  std::istringstream in(read_text("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  std::vector<uid_t> out;
  while (std::getline(in, line)) {
    if (line.rfind("Uid:", 0) != 0) continue;
    std::istringstream fields(line.substr(4));
    uid_t u = 0;
    while (fields >> u)
      out.push_back(u);
  }
  return out;
}

std::string only_uid(httplib::Client &c) {
  auto r = c.Get("/v1/experiments", auth());
  if (!r || r->status != 200) return "";
  auto items = json::parse(r->body)["data"]["items"];
  return items.size() == 1 ? items[0].value("uid", "") : "";
}

}  // namespace

TEST_CASE("process load starts count idle processes and destroy kills exactly them") {
  BladedProcess d(os_options());
  auto c = d.client();

  auto dry = create(c, "process", "load", {{"count", 3}}, true);
  REQUIRE_MESSAGE(dry.status == 200, dry.body.dump());
  CHECK(dry.body["data"]["plan"]["count"] == 3);

  auto r = create(c, "process", "load", {{"count", 3}});
  REQUIRE_MESSAGE(r.status == 201, r.body.dump());
  const std::string uid = r.uid();
  const json result = r.body["data"]["result"];
  CHECK(result["started"] == 3);
  auto live = load_processes(uid);
  REQUIRE(live.size() == 3);
  for (const auto &p : result["processes"])
    CHECK(live.count(p["pid"].get<pid_t>()) == 1);
  for (pid_t pid : live) {
    CHECK(read_text("/proc/" + std::to_string(pid) + "/comm") == "sleep\n");
    CHECK(running(process_state(pid)));
  }

  // They carry "blade" in their command line: no process matcher hits them.
  auto kill = create(c, "process", "kill", {{"process", "blade-process-load-" + uid}});
  CHECK(kill.status == 422);
  CHECK(load_processes(uid).size() == 3);

  check_destroyed(c, uid);
  for (pid_t pid : live)
    CHECK(process_state(pid) == 0);  // gone and reaped by bladed: no zombie left
  CHECK(load_processes(uid).empty());
  check_destroyed(c, uid);  // idempotent
}

TEST_CASE("process load --user runs them as that user") {
  passwd *nobody = ::getpwnam("nobody");
  REQUIRE_MESSAGE(nobody, "this test needs the user 'nobody'");
  const uid_t expected = nobody->pw_uid;
  BladedProcess d(os_options());
  auto c = d.client();
  auto r = create(c, "process", "l", {{"count", 2}, {"user", "nobody"}});
  REQUIRE_MESSAGE(r.status == 201, r.body.dump());
  auto live = load_processes(r.uid());
  REQUIRE(live.size() == 2);
  for (pid_t pid : live)
    CHECK(uids_of(pid) == std::vector<uid_t>(4, expected));
  check_destroyed(c, r.uid());
  CHECK(load_processes(r.uid()).empty());
}

TEST_CASE("process load: a process limit reached mid-way keeps what started and says so") {
  passwd *nobody = ::getpwnam("nobody");
  REQUIRE_MESSAGE(nobody, "this test needs the user 'nobody'");
  BladedProcess d(os_options());
  auto c = d.client();
  // bladed's RLIMIT_NPROC is what its children inherit: 3 processes for a
  // user that is not root; an exec as nobody beyond it fails with EAGAIN.
  const rlimit low{3, 3};
  REQUIRE(::prlimit(d.process->pid(), RLIMIT_NPROC, &low, nullptr) == 0);
  const std::size_t others = [&] {
    std::size_t n = 0;
    for (pid_t pid : proc::list_pids())
      if (auto u = uids_of(pid); !u.empty() && u[0] == nobody->pw_uid) ++n;
    return n;
  }();
  REQUIRE_MESSAGE(others < 3, "other processes of 'nobody' already use the limit");

  auto r = create(c, "process", "load", {{"count", 10}, {"user", "nobody"}});
  REQUIRE_MESSAGE(r.status == 201, r.body.dump());
  const json result = r.body["data"]["result"];
  const auto started = result["started"].get<std::size_t>();
  // The kernel flags a setuid that finds the user already OVER the limit,
  // so the 4th still goes through and the 5th fails.
  CHECK(started >= 3 - others);
  CHECK(started <= 4 - others);
  CHECK(result["requested"] == 10);
  CHECK(result["note"].get<std::string>().find("limit") != std::string::npos);
  CHECK(load_processes(r.uid()).size() == started);
  check_destroyed(c, r.uid());
  CHECK(load_processes(r.uid()).empty());
}

TEST_CASE("process load: bad count or user is a field-named 400 and starts nothing") {
  BladedProcess d(os_options());
  auto c = d.client();
  struct Case {
    json flags;
    std::string field;
  };
  const std::vector<Case> cases = {
      {{{"count", 0}}, "count"},
      {json::object(), "count"},
      {{{"count", 10001}}, "count"},
      {{{"count", 2}, {"user", "no-such-user-here"}}, "user"},
      {{{"count", 2}, {"user", ""}}, "user"},
  };
  for (const auto &k : cases) {
    for (bool dry : {false, true}) {
      CAPTURE(k.flags.dump());
      CAPTURE(dry);
      auto r = create(c, "process", "load", k.flags, dry);
      INFO(r.body.dump());
      CHECK(r.status == 400);
      CHECK(r.field() == "flags." + k.field);
    }
  }
  // Nothing runs (whether a refused create is listed as failed is the core's
  // business), and no process was started.
  auto list = json::parse(c.Get("/v1/experiments", auth())->body)["data"]["items"];
  for (const auto &e : list)
    CHECK(e["status"] != "running");
  CHECK(load_processes("").empty());
}

TEST_CASE("process load: the processes outlive a SIGKILL of bladed and the restart kills them") {
  BladedProcess d(os_options());
  std::string uid;
  {
    auto c = d.client();
    auto r = create(c, "process", "load", {{"count", 2}});
    REQUIRE_MESSAGE(r.status == 201, r.body.dump());
    uid = r.uid();
  }
  const auto live = load_processes(uid);
  REQUIRE(live.size() == 2);
  d.crash();
  CHECK(load_processes(uid) == live);  // the fault outlived the daemon

  d.restart();  // returns once recovery has run
  auto c = d.client();
  CHECK(eventually([&] { return load_processes(uid).empty(); }, 5s));
  CHECK(wait_destroyed(c, uid, 10s) == "destroyed");
}

#ifdef BLADE_FAILPOINTS
TEST_CASE("process load: a crash between two forks leaves nothing after recovery") {
  BladedOptions o = os_options();
  // The second process is started, then bladed dies before recording it.
  o.env = {"BLADE_FAILPOINTS=os.process.load.after_spawn=kill@2"};
  BladedProcess d(o);
  {
    auto c = d.client();
    auto r = post_json(c, "/v1/experiments",
                       {{"target", "process"}, {"action", "load"}, {"flags", {{"count", 3}}}});
    CHECK_FALSE(r);  // the connection died with bladed
  }
  REQUIRE(d.process->exit_code(10s) == -SIGKILL);
  // Two were started (the second never recorded) and outlived bladed.
  const auto before = load_processes("");
  CHECK(before.size() >= 2);
  d.set_env({});
  d.restart();
  auto c = d.client();
  const std::string uid = only_uid(c);
  REQUIRE_FALSE(uid.empty());
  CHECK(eventually([&] { return load_processes(uid).empty(); }, 5s));
  for (pid_t pid : before)
    CHECK(eventually([&] { return process_state(pid) == 0 || process_state(pid) == 'Z'; }, 5s));
  const std::string status = wait_destroyed(c, uid, 10s);
  CHECK((status == "destroyed" || status == "failed"));
}
#endif
