// process kill / stop against a real bladed with the os plugin, on real child
// processes this test starts: their state read from /proc/<pid>/stat, their
// death from waitpid, and nothing left stopped after destroy.
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <string>

#include "../../plugins/os/src/proc_table.hpp"
#include "../support/eventually.hpp"
#include "../support/process_state.hpp"
#include "os_test_support.hpp"

using blade::test::auth;
using blade::test::BladedProcess;
using blade::test::check_destroyed;
using blade::test::create;
using blade::test::eventually;
using blade::test::process_state;
using blade::test::os::os_options;
using blade::test::os::running;
using blade::test::os::Sleepers;
using nlohmann::json;
namespace proc = blade::os::proc;

namespace {

// A child that listens on an ephemeral TCP port and waits; its pid and port.
struct Listener {
  pid_t pid = -1;
  int port = 0;
  Listener() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 4) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) == 0);
    port = ntohs(addr.sin_port);
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // Only async-signal-safe calls from here: the socket stays open.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      for (;;)
        ::pause();
    }
    ::close(fd);  // the child is the socket's only owner now
  }
  ~Listener() {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
};

}  // namespace

TEST_CASE("stat parsing: start time after the last ')', and pid reuse is told apart") {
  auto s = proc::parse_stat(
      "4242 (we ird) (x) S 17 4242 4242 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 987654 1 2 3");
  REQUIRE(s);
  CHECK(s->comm == "we ird) (x");
  CHECK(s->state == 'S');
  CHECK(s->ppid == 17);
  CHECK(s->flags == 4194560);
  CHECK(s->start_time == 987654);
  CHECK_FALSE(proc::parse_stat("4242 (x) S 1 2"));
  CHECK_FALSE(proc::parse_stat("garbage"));

  CHECK(proc::same_process(987654, 987654));
  CHECK_FALSE(proc::same_process(987655, 987654));        // same pid, another process
  CHECK_FALSE(proc::same_process(std::nullopt, 987654));  // gone

  // A live process: the start time read twice is stable, and a wrong one
  // makes signal_if_same refuse to signal.
  Sleepers s2;
  auto &child = s2.start();
  auto start = proc::start_time_of(child.pid());
  REQUIRE(start);
  CHECK(proc::signal_if_same(child.pid(), *start + 1, SIGSTOP) == ESRCH);
  CHECK(running(process_state(child.pid())));
}

TEST_CASE("/proc/net/tcp parsing finds LISTEN sockets of a port only") {
  const std::string text =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
      "timeout inode\n"
      "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 "
      "       0 11111 1 0000000000000000 100 0 0 10 0\n"
      "   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0 "
      "       0 22222 1 0000000000000000 100 0 0 10 0\n"
      "   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 "
      "       0 33333 1 0000000000000000 100 0 0 10 0\n";
  using Ports = std::vector<blade::plugins::IntRange>;
  CHECK(proc::listening_inodes(text, Ports{{8080, 8080}}) == std::set<std::uint64_t>{11111});
  CHECK(proc::listening_inodes(text, Ports{{80, 80}}) == std::set<std::uint64_t>{33333});
  CHECK(proc::listening_inodes(text, Ports{{81, 81}}).empty());
  // A list with a range, as local-port takes it: 80,8000-8080.
  CHECK(proc::listening_inodes(text, Ports{{80, 80}, {8000, 8080}}) ==
        std::set<std::uint64_t>{11111, 33333});
  CHECK(proc::listening_inodes(text, Ports{{81, 8079}}).empty());
}

TEST_CASE("process stop stops a child until destroy; dry run and a second destroy are harmless") {
  BladedProcess d(os_options());
  auto c = d.client();
  Sleepers s;
  auto &child = s.start();

  // Dry run names the child and changes nothing.
  auto dry = create(c, "process", "stop", {{"process", s.name}}, true);
  REQUIRE_MESSAGE(dry.status == 200, dry.body.dump());
  auto plan = dry.body["data"]["plan"];
  REQUIRE(plan["processes"].size() == 1);
  CHECK(plan["processes"][0]["pid"] == child.pid());
  CHECK(running(process_state(child.pid())));

  auto created = create(c, "process", "stop", {{"process", s.name}});
  REQUIRE_MESSAGE(created.status == 201, created.body.dump());
  const std::string uid = created.uid();
  CHECK(eventually([&] { return process_state(child.pid()) == 'T'; }, std::chrono::seconds(5)));
  CHECK(created.body["data"]["result"]["processes"][0]["pid"] == child.pid());

  check_destroyed(c, uid);
  CHECK(eventually([&] { return running(process_state(child.pid())); }, std::chrono::seconds(5)));
  check_destroyed(c, uid);  // idempotent
  CHECK(running(process_state(child.pid())));
}

TEST_CASE("process kill by comm, by command line, and count limits the victims") {
  BladedProcess d(os_options());
  auto c = d.client();

  SUBCASE("by comm (process-cmd), default SIGKILL") {
    Sleepers s;
    auto &child = s.start();
    auto created = create(c, "process", "kill", {{"process-cmd", s.name}});
    REQUIRE_MESSAGE(created.status == 201, created.body.dump());
    CHECK(child.exit_code(std::chrono::seconds(5)) == -SIGKILL);
    check_destroyed(c, created.uid());
  }
  SUBCASE("by command line, with a chosen signal") {
    Sleepers s;
    auto &child = s.start();
    auto created =
        create(c, "process", "kill", {{"process", s.exe.string() + " 300"}, {"signal", "15"}});
    REQUIRE_MESSAGE(created.status == 201, created.body.dump());
    CHECK(child.exit_code(std::chrono::seconds(5)) == -SIGTERM);
  }
  SUBCASE("count 2 of 3") {
    Sleepers s;
    for (int i = 0; i < 3; ++i)
      s.start();
    auto created = create(c, "process", "k", {{"process", s.name}, {"count", 2}});
    REQUIRE_MESSAGE(created.status == 201, created.body.dump());
    CHECK(created.body["data"]["result"]["processes"].size() == 2);
    int dead = 0;
    for (auto &child : s.children)
      dead += child->exit_code(std::chrono::seconds(2)).has_value();
    CHECK(dead == 2);
  }
  SUBCASE("exclude-process spares the named ones") {
    Sleepers s;
    auto &child = s.start();
    auto r = create(c, "process", "kill",
                    {{"process", s.exe.string()}, {"exclude-process", "x," + s.name}});
    REQUIRE_MESSAGE(r.status == 422, r.body.dump());
    CHECK(r.body["code"] == "FAILED_PRECONDITION");
    CHECK_FALSE(child.exit_code(std::chrono::milliseconds(200)).has_value());
  }
}

TEST_CASE("process stop by local-port stops the listener") {
  Listener l;
  BladedProcess d(os_options());
  auto c = d.client();
  REQUIRE(eventually([&] { return running(process_state(l.pid)); }));
  auto created = create(c, "process", "f", {{"local-port", l.port}});
  REQUIRE_MESSAGE(created.status == 201, created.body.dump());
  auto hit = created.body["data"]["result"]["processes"];
  REQUIRE(hit.size() == 1);
  CHECK(hit[0]["pid"] == l.pid);
  CHECK(eventually([&] { return process_state(l.pid) == 'T'; }, std::chrono::seconds(5)));
  check_destroyed(c, created.uid());
  CHECK(eventually([&] { return running(process_state(l.pid)); }, std::chrono::seconds(5)));
}

TEST_CASE("the daemon, its parent and pid 1 cannot be targeted") {
  BladedProcess d(os_options());
  auto c = d.client();
  const pid_t bladed = d.process->pid();

  for (pid_t pid : {bladed, ::getpid(), 1}) {
    CAPTURE(pid);
    auto r = create(c, "process", "kill", {{"pid", pid}});
    REQUIRE_MESSAGE(r.status == 400, r.body.dump());
    CHECK(r.body["code"] == "INVALID_ARGUMENT");
    CHECK(r.body["message"].get<std::string>().rfind("pid: ", 0) == 0);
    CHECK(r.body["details"][0]["field"] == "flags.pid");
  }
  // bladed's own command line holds its unique state dir: it still is no target.
  auto r = create(c, "process", "kill", {{"process", d.dir.path().string()}});
  REQUIRE_MESSAGE(r.status == 422, r.body.dump());
  CHECK(r.body["code"] == "FAILED_PRECONDITION");
  CHECK_FALSE(d.process->exit_code(std::chrono::milliseconds(300)).has_value());
  CHECK(running(process_state(bladed)));
  auto list = c.Get("/v1/experiments", auth());
  REQUIRE(list);
  CHECK(list->status == 200);

  SUBCASE("no matcher at all is a field-named 400") {
    auto none = create(c, "process", "stop", json::object());
    REQUIRE_MESSAGE(none.status == 400, none.body.dump());
    CHECK(none.body["message"].get<std::string>().rfind("process: ", 0) == 0);
  }
}

TEST_CASE("nothing matching is 422, or 201 with ignore-not-found") {
  BladedProcess d(os_options());
  auto c = d.client();
  const std::string ghost = "no-such-proc-" + std::to_string(::getpid());
  auto r = create(c, "process", "stop", {{"process", ghost}});
  REQUIRE_MESSAGE(r.status == 422, r.body.dump());
  CHECK(r.body["code"] == "FAILED_PRECONDITION");
  CHECK(r.body["message"].get<std::string>().find("no process matches") != std::string::npos);
  auto ok = create(c, "process", "stop", {{"process", ghost}, {"ignore-not-found", true}});
  REQUIRE_MESSAGE(ok.status == 201, ok.body.dump());
  CHECK(ok.body["data"]["result"]["processes"].empty());
  check_destroyed(c, ok.uid());
}

TEST_CASE("destroy of a stop whose process is gone succeeds and signals nothing") {
  BladedProcess d(os_options());
  auto c = d.client();
  Sleepers s;
  auto &child = s.start();
  auto &other = s.start();
  auto created = create(c, "process", "stop", {{"pid", child.pid()}});
  REQUIRE_MESSAGE(created.status == 201, created.body.dump());
  CHECK(eventually([&] { return process_state(child.pid()) == 'T'; }, std::chrono::seconds(5)));
  CHECK(running(process_state(other.pid())));
  child.signal(SIGKILL);
  REQUIRE(child.exit_code(std::chrono::seconds(5)) == -SIGKILL);  // reaped: the pid is free
  check_destroyed(c, created.uid());
  CHECK(running(process_state(other.pid())));
}

TEST_CASE("a stopped process runs again when a new bladed starts after a SIGKILL") {
  Sleepers s;
  auto &child = s.start();
  BladedProcess d(os_options());
  {
    auto c = d.client();
    auto stop = create(c, "process", "stop", {{"process", s.name}});
    REQUIRE_MESSAGE(stop.status == 201, stop.body.dump());
  }
  REQUIRE(eventually([&] { return process_state(child.pid()) == 'T'; }, std::chrono::seconds(5)));
  d.crash();
  CHECK(eventually([&] { return process_state(child.pid()) == 'T'; },
                   std::chrono::seconds(5)));  // the fault outlived the daemon

  d.restart();  // returns once recovery has run
  CHECK(eventually([&] { return running(process_state(child.pid())); }, std::chrono::seconds(5)));
  d.process->signal(SIGTERM);
  CHECK(d.process->exit_code(std::chrono::seconds(10)) == 0);
}
