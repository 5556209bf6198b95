// ChaosBlade's process matchers on real processes this test starts, against a
// real bladed: `process` is a text of the full command line, `process-cmd`
// the exact comm, `local-port` a list with ranges, `pid` a list; only the
// first given of them counts; `signal` takes names; `exclude-process` is a
// command-line text; and the blade CLI that asks is never hit.
//
// The host is shared (other tests run at the same time), so every kill that
// takes effect names a text unique to this run; ChaosBlade's literal
// examples (`--process SimpleHTTPServer`, `--process-cmd sleep`) run as dry
// runs, which show what they would hit and change nothing.
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <optional>
#include <random>
#include <string>

#include "../cli/blade_run.hpp"
#include "../support/eventually.hpp"
#include "../support/process_state.hpp"
#include "os_test_support.hpp"

using namespace blade::test;
using namespace blade::test::os;
using namespace std::chrono_literals;

namespace {

std::string cmdline_of(pid_t pid) {
  std::string text = read_text("/proc/" + std::to_string(pid) + "/cmdline");
  while (!text.empty() && text.back() == '\0')
    text.pop_back();
  std::replace(text.begin(), text.end(), '\0', ' ');
  return text;
}

std::string comm_of(pid_t pid) {
  std::string text = read_text("/proc/" + std::to_string(pid) + "/comm");
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

// `sleep 300` whose argv[0] is `argv0` (bash's exec -a): the command line
// says what the test wants, the comm stays "sleep".
struct Disguised {
  std::unique_ptr<ChildProcess> child;
  explicit Disguised(const std::string &argv0) {
    child = std::make_unique<ChildProcess>(
        std::vector<std::string>{"/bin/bash", "-c", "exec -a \"$0\" /bin/sleep 300", argv0});
    REQUIRE(eventually([&] { return cmdline_of(pid()).rfind(argv0, 0) == 0; }));
    REQUIRE(comm_of(pid()) == "sleep");
  }
  pid_t pid() const { return child->pid(); }
  bool alive() const { return !child->exit_code(0ms).has_value(); }
};

// A child listening on 127.0.0.1:`port` (0: any free port) and waiting.
struct Listener {
  pid_t pid = -1;
  int port = 0;
  static std::optional<int> bind_to(int port, int &fd) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 || ::listen(fd, 4) != 0) {
      ::close(fd);
      return std::nullopt;
    }
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) == 0);
    return ntohs(addr.sin_port);
  }
  // Binds first (so the caller can retry on another port), then forks.
  static std::unique_ptr<Listener> on(int wanted) {
    int fd = -1;
    auto bound = bind_to(wanted, fd);
    if (!bound) return nullptr;
    auto l = std::make_unique<Listener>();
    l->port = *bound;
    l->pid = ::fork();
    REQUIRE(l->pid >= 0);
    if (l->pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      for (;;)
        ::pause();
    }
    ::close(fd);
    return l;
  }
  ~Listener() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

// Two listeners on consecutive ports (a range of exactly them).
std::pair<std::unique_ptr<Listener>, std::unique_ptr<Listener>> adjacent_listeners() {
  std::mt19937 rng(static_cast<unsigned>(::getpid()));
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int base = 20000 + static_cast<int>(rng() % 20000);
    auto a = Listener::on(base);
    if (!a) continue;
    auto b = Listener::on(base + 1);
    if (b) return {std::move(a), std::move(b)};
  }
  FAIL("no two free consecutive ports found in 20000-40000");
  return {};
}

std::string unique_token() {
  static int n = 0;
  return "bmt" + std::to_string(::getpid()) + "x" + std::to_string(n++);
}

bool plan_has(const json &plan, pid_t pid) {
  for (const auto &p : plan["processes"])
    if (p["pid"] == pid) return true;
  return false;
}

void check_field_400(const Answer &r, const std::string &field) {
  INFO(r.body.dump());
  CHECK(r.status == 400);
  CHECK(r.body["code"] == "INVALID_ARGUMENT");
  CHECK(r.field() == "flags." + field);
}

}  // namespace

TEST_CASE("--process is a text of the command line: a SimpleHTTPServer fixture is killed") {
  BladedProcess d(os_options());
  auto c = d.client();
  const std::string token = unique_token();
  Disguised server("python -m SimpleHTTPServer " + token);
  Sleepers s;
  auto &bystander = s.start();

  // ChaosBlade's own example, as a dry run: it would hit the fixture (comm
  // "sleep", so only its command line can match) and not the bystander.
  auto dry = create(c, "process", "kill", {{"process", "SimpleHTTPServer"}}, true);
  REQUIRE_MESSAGE(dry.status == 200, dry.body.dump());
  CHECK(plan_has(dry.body["data"]["plan"], server.pid()));
  CHECK_FALSE(plan_has(dry.body["data"]["plan"], bystander.pid()));
  CHECK(dry.body["data"]["plan"]["matcher"]["flag"] == "process");
  CHECK(server.alive());

  auto r = create(c, "process", "kill", {{"process", "SimpleHTTPServer " + token}});
  REQUIRE_MESSAGE(r.status == 201, r.body.dump());
  CHECK(server.child->exit_code(5s) == -SIGKILL);
  CHECK(r.body["data"]["result"]["processes"].size() == 1);
  CHECK(r.body["data"]["result"]["matcher"]["flag"] == "process");
  CHECK_FALSE(bystander.exit_code(200ms).has_value());
  check_destroyed(c, r.uid());
}

TEST_CASE("--process-cmd is the exact comm: a command line that only mentions it survives") {
  BladedProcess d(os_options());
  auto c = d.client();
  Sleepers s;
  auto &named = s.start();                                     // comm == s.name
  Disguised mention(s.name + "-client --talks-to " + s.name);  // comm "sleep"
  // A shell whose arguments name it (comm "sh").
  ChildProcess shell({"/bin/sh", "-c", "while :; do sleep 1; done", s.name});
  REQUIRE(eventually([&] { return cmdline_of(shell.pid()).find(s.name) != std::string::npos; }));

  SUBCASE("--process-cmd <name> kills only the process named so") {
    auto r = create(c, "process", "kill", {{"process-cmd", s.name}});
    REQUIRE_MESSAGE(r.status == 201, r.body.dump());
    CHECK(named.exit_code(5s) == -SIGKILL);
    CHECK(r.body["data"]["result"]["processes"].size() == 1);
    CHECK(mention.alive());
    CHECK_FALSE(shell.exit_code(200ms).has_value());
  }
  SUBCASE("--process <name> is a text of the command line: all three are hit") {
    auto r = create(c, "process", "kill", {{"process", s.name}});
    REQUIRE_MESSAGE(r.status == 201, r.body.dump());
    CHECK(named.exit_code(5s) == -SIGKILL);
    CHECK(mention.child->exit_code(5s) == -SIGKILL);
    CHECK(shell.exit_code(5s) == -SIGKILL);
  }
  SUBCASE("ChaosBlade's --process-cmd sleep, as a dry run: comm sleep only") {
    auto dry = create(c, "process", "kill", {{"process-cmd", "sleep"}}, true);
    REQUIRE_MESSAGE(dry.status == 200, dry.body.dump());
    const json plan = dry.body["data"]["plan"];
    CHECK(plan_has(plan, mention.pid()));  // comm sleep
    CHECK_FALSE(plan_has(plan, named.pid()));
    CHECK_FALSE(plan_has(plan, shell.pid()));
    for (const auto &p : plan["processes"])
      CHECK(p["name"] == "sleep");
    CHECK(named.exit_code(0ms) == std::nullopt);
  }
}

TEST_CASE("--local-port takes a list and a range; bad ports are a 400 on flags.local-port") {
  BladedProcess d(os_options());
  auto c = d.client();
  auto [a, b] = adjacent_listeners();
  auto other = Listener::on(0);
  REQUIRE(other);
  const std::string range = std::to_string(a->port) + "-" + std::to_string(b->port);

  SUBCASE("a range stops both, not the third") {
    auto r = create(c, "process", "stop", {{"local-port", range}});
    REQUIRE_MESSAGE(r.status == 201, r.body.dump());
    CHECK(r.body["data"]["result"]["processes"].size() == 2);
    CHECK(eventually([&] { return process_state(a->pid) == 'T'; }, 5s));
    CHECK(eventually([&] { return process_state(b->pid) == 'T'; }, 5s));
    CHECK(running(process_state(other->pid)));
    check_destroyed(c, r.uid());
    CHECK(eventually([&] { return running(process_state(a->pid)); }, 5s));
    CHECK(eventually([&] { return running(process_state(b->pid)); }, 5s));
  }
  SUBCASE("a list with a range, as ChaosBlade writes it") {
    const std::string list = std::to_string(other->port) + "," + range;
    auto r = create(c, "process", "stop", {{"local-port", list}});
    REQUIRE_MESSAGE(r.status == 201, r.body.dump());
    CHECK(r.body["data"]["result"]["processes"].size() == 3);
    for (pid_t pid : {a->pid, b->pid, other->pid})
      CHECK(eventually([&] { return process_state(pid) == 'T'; }, 5s));
    check_destroyed(c, r.uid());
    for (pid_t pid : {a->pid, b->pid, other->pid})
      CHECK(eventually([&] { return running(process_state(pid)); }, 5s));
  }
  SUBCASE("bad lists, in create and in dry run") {
    for (const char *bad : {"0", "70000", "http", "9000-8000", "80,", "80-", "-5"}) {
      CAPTURE(bad);
      check_field_400(create(c, "process", "kill", {{"local-port", bad}}), "local-port");
      check_field_400(create(c, "process", "kill", {{"local-port", bad}}, true), "local-port");
    }
    for (pid_t pid : {a->pid, b->pid, other->pid})
      CHECK(running(process_state(pid)));
  }
}

TEST_CASE("--pid takes a comma list; bad or protected pids are a 400 on flags.pid") {
  Sleepers s;
  auto &one = s.start();
  auto &two = s.start();
  auto &three = s.start();
  BladedProcess d(os_options());
  auto c = d.client();

  SUBCASE("a list kills exactly those") {
    const std::string list = std::to_string(one.pid()) + "," + std::to_string(two.pid());
    auto r = create(c, "process", "kill", {{"pid", list}});
    REQUIRE_MESSAGE(r.status == 201, r.body.dump());
    CHECK(one.exit_code(5s) == -SIGKILL);
    CHECK(two.exit_code(5s) == -SIGKILL);
    CHECK_FALSE(three.exit_code(200ms).has_value());
    CHECK(r.body["data"]["result"]["matcher"]["flag"] == "pid");
  }
  SUBCASE("bad lists and a protected pid in the list change nothing") {
    const std::string mine = std::to_string(one.pid());
    for (const std::string &bad :
         {mine + ",abc", std::string("0"), mine + "-" + mine, std::string("-1"), mine + ",1"}) {
      CAPTURE(bad);
      check_field_400(create(c, "process", "kill", {{"pid", bad}}), "pid");
      check_field_400(create(c, "process", "kill", {{"pid", bad}}, true), "pid");
    }
    CHECK_FALSE(one.exit_code(200ms).has_value());
  }
}

TEST_CASE("--signal takes numbers and names in any case; others are a 400 on flags.signal") {
  BladedProcess d(os_options());
  auto c = d.client();
  struct Case {
    const char *signal;
    int expected;
  };
  for (const Case k : {Case{"TERM", SIGTERM}, Case{"SIGKILL", SIGKILL}, Case{"kill", SIGKILL},
                       Case{"sigHup", SIGHUP}, Case{"15", SIGTERM}, Case{"SIGUSR1", SIGUSR1}}) {
    CAPTURE(k.signal);
    Sleepers s;
    auto &child = s.start();
    auto r = create(c, "process", "kill", {{"process-cmd", s.name}, {"signal", k.signal}});
    REQUIRE_MESSAGE(r.status == 201, r.body.dump());
    CHECK(child.exit_code(5s) == -k.expected);
    CHECK(r.body["data"]["result"]["signal"] == k.expected);
  }
  Sleepers s;
  auto &child = s.start();
  for (const char *bad : {"FOO", "0", "65", "SIG", "-9", "9x"}) {
    CAPTURE(bad);
    check_field_400(create(c, "process", "kill", {{"process-cmd", s.name}, {"signal", bad}}),
                    "signal");
    check_field_400(create(c, "process", "kill", {{"process-cmd", s.name}, {"signal", bad}}, true),
                    "signal");
  }
  CHECK_FALSE(child.exit_code(200ms).has_value());
}

TEST_CASE("--exclude-process spares the processes whose command line contains a text") {
  BladedProcess d(os_options());
  auto c = d.client();
  const std::string token = unique_token();
  Disguised hit(token + " worker");
  Disguised spared(token + " worker --role keep-me");
  auto r = create(c, "process", "kill",
                  {{"process", token}, {"exclude-process", "nothing-like-it, keep-me"}});
  REQUIRE_MESSAGE(r.status == 201, r.body.dump());
  CHECK(hit.child->exit_code(5s) == -SIGKILL);
  CHECK(spared.alive());
  CHECK(r.body["data"]["result"]["processes"].size() == 1);
}

TEST_CASE("only the first matcher given counts: process, process-cmd, local-port, pid") {
  BladedProcess d(os_options());
  auto c = d.client();
  Sleepers s;
  auto &named = s.start();
  Sleepers other;
  auto &bystander = other.start();

  SUBCASE("process wins over pid; the result names the ignored one") {
    auto r = create(c, "process", "kill",
                    {{"process", s.name}, {"pid", std::to_string(bystander.pid())}});
    REQUIRE_MESSAGE(r.status == 201, r.body.dump());
    CHECK(named.exit_code(5s) == -SIGKILL);
    CHECK_FALSE(bystander.exit_code(200ms).has_value());
    const json m = r.body["data"]["result"]["matcher"];
    CHECK(m["flag"] == "process");
    CHECK(m["value"] == s.name);
    CHECK(m["ignored"] == json::array({"pid"}));
  }
  SUBCASE("process-cmd wins over local-port and pid") {
    auto l = Listener::on(0);
    REQUIRE(l);
    auto r = create(c, "process", "stop",
                    {{"pid", std::to_string(bystander.pid())},
                     {"local-port", std::to_string(l->port)},
                     {"process-cmd", s.name}});
    REQUIRE_MESSAGE(r.status == 201, r.body.dump());
    CHECK(eventually([&] { return process_state(named.pid()) == 'T'; }, 5s));
    CHECK(running(process_state(l->pid)));
    CHECK(running(process_state(bystander.pid())));
    const json m = r.body["data"]["result"]["matcher"];
    CHECK(m["flag"] == "process-cmd");
    CHECK(m["ignored"] == json::array({"local-port", "pid"}));
    check_destroyed(c, r.uid());
    CHECK(eventually([&] { return running(process_state(named.pid())); }, 5s));
  }
  SUBCASE("local-port wins over pid") {
    auto l = Listener::on(0);
    REQUIRE(l);
    auto r =
        create(c, "process", "kill",
               {{"local-port", std::to_string(l->port)}, {"pid", std::to_string(bystander.pid())}});
    REQUIRE_MESSAGE(r.status == 201, r.body.dump());
    int status = 0;
    CHECK(eventually([&] { return ::waitpid(l->pid, &status, WNOHANG) == l->pid; }, 5s));
    CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
    l->pid = -1;  // reaped
    CHECK_FALSE(bystander.exit_code(200ms).has_value());
    CHECK(r.body["data"]["result"]["matcher"]["flag"] == "local-port");
  }
  SUBCASE("an ignored matcher is still checked: a typo is a 400, not a no-op") {
    check_field_400(create(c, "process", "kill", {{"process", s.name}, {"pid", "12ab"}}), "pid");
    CHECK_FALSE(named.exit_code(200ms).has_value());
  }
}

TEST_CASE("the blade CLI that sends --process <text> is never hit, though its arguments match") {
  BladedProcess d(os_options());
  BladeRunner blade({"BLADE_ENDPOINT=" + d.url(), "BLADE_API_TOKEN=" + kToken});
  const std::string token = unique_token();
  Disguised target(token + " service");

  auto kill = blade.run({"create", "process", "kill", "--process", token});
  INFO(kill.out << kill.err);
  CHECK(kill.code == 0);  // exited normally: not SIGKILLed by its own request
  CHECK(target.child->exit_code(5s) == -SIGKILL);

  // Nothing but the CLI itself matches now: not found, and the CLI says so.
  auto again = blade.run({"create", "process", "kill", "--process", token});
  INFO(again.out << again.err);
  CHECK(again.code != 0);
  CHECK(again.code > 0);  // an error exit, not a signal
  // By comm: the CLI's own name.
  auto by_comm =
      blade.run({"create", "process", "kill", "--process-cmd", "blade", "--ignore-not-found"});
  INFO(by_comm.out << by_comm.err);
  CHECK(by_comm.code == 0);
}
