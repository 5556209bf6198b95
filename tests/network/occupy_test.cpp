// network occupy against a real bladed born in a network namespace the test
// makes (so its ports are the namespace's, never the host's), with only the
// network plugin loaded. The effect is measured with real bind() calls from
// this process, the holders are real processes (a copy of sleep that
// inherited a listening socket), and after destroy, a crash or a refusal the
// port and the holders are checked as the kernel sees them.
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../os/failpoint_kill.hpp"
#include "../support/eventually.hpp"
#include "../support/temp_dir.hpp"
#include "bladed_process.hpp"
#include "experiment_calls.hpp"
#include "netns.hpp"

namespace fs = std::filesystem;
using namespace blade::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// A bladed with only network.so, born inside a namespace of this test's
// own, and this thread inside it too (so the test's sockets and clients are
// the namespace's). Members are built in this order and torn down in the
// reverse: the daemon dies before the thread leaves and the namespace goes.
struct Daemon {
  net::NetNs ns{"occupy"};
  net::EnterNetNs inside{ns};
  BladedProcess d{only_plugin(fs::path(BLADE_BUILT_PLUGIN_DIR) / "network.so")};

  fs::path occupy_state() const { return d.dir / "state" / "plugins" / "network" / "occupy"; }
  std::size_t claims() const {
    const fs::path dir = occupy_state() / "claims";
    if (!fs::exists(dir)) return 0;
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), {}));
  }
};

bool have_ipv6() {
  const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

// What bind() says for a new TCP socket of this process on `port` at
// `addr` ("0.0.0.0", "127.0.0.1", "::" v6-only, "::1"): 0 or the errno.
// With `reuse`, SO_REUSEADDR as most servers set it.
int bind_errno(const std::string &addr, std::uint16_t port, bool reuse = false) {
  const bool v6 = addr.find(':') != std::string::npos;
  const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  const int on = 1;
  if (reuse) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  int rc = 0;
  if (v6) {
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    REQUIRE(::inet_pton(AF_INET6, addr.c_str(), &a.sin6_addr) == 1);
    rc = ::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    REQUIRE(::inet_pton(AF_INET, addr.c_str(), &a.sin_addr) == 1);
    rc = ::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
  }
  const int err = rc == 0 ? 0 : errno;
  ::close(fd);
  return err;
}

// Every address a bind could take the port on fails with EADDRINUSE.
void check_taken(std::uint16_t port) {
  CAPTURE(port);
  CHECK(bind_errno("0.0.0.0", port) == EADDRINUSE);
  CHECK(bind_errno("0.0.0.0", port, true) == EADDRINUSE);
  CHECK(bind_errno("127.0.0.1", port) == EADDRINUSE);
  if (have_ipv6()) {
    CHECK(bind_errno("::", port) == EADDRINUSE);
    CHECK(bind_errno("::1", port, true) == EADDRINUSE);
  }
}

void check_free(std::uint16_t port) {
  CAPTURE(port);
  CHECK(bind_errno("0.0.0.0", port) == 0);
  if (have_ipv6()) CHECK(bind_errno("::", port) == 0);
}

// A listening socket of this process on every address of `port`.
int listen_fd(std::uint16_t port, int flags) {
  const int fd = ::socket(AF_INET6, SOCK_STREAM | flags, 0);
  REQUIRE(fd >= 0);
  const int on = 1;
  const int off = 0;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  a.sin6_addr = in6addr_any;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd, 8) == 0);
  return fd;
}

// Another process listening on `port`: `exe` (a sleep) started with a
// listening socket it inherits, this process's copy closed. With
// `ignore_term` it ignores SIGTERM (a disposition exec keeps), so only
// SIGKILL stops it.
class Holder {
 public:
  Holder(std::uint16_t port, const std::string &exe = "/bin/sleep", bool ignore_term = false) {
    const int fd = listen_fd(port, 0);  // inherited through exec
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (ignore_term) ::signal(SIGTERM, SIG_IGN);
      ::execl(exe.c_str(), exe.c_str(), "300", static_cast<char *>(nullptr));
      ::_exit(127);
    }
    ::close(fd);
    // Running the program (not the test's copy before exec) once its comm
    // is the program's.
    const std::string want = fs::path(exe).filename().string().substr(0, 15) + "\n";
    REQUIRE(
        eventually([&] { return read_text("/proc/" + std::to_string(pid_) + "/comm") == want; }));
  }
  ~Holder() {
    if (!status_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Holder(const Holder &) = delete;
  Holder &operator=(const Holder &) = delete;

  pid_t pid() const { return pid_; }
  // The signal that ended it, waiting up to `timeout`; 0 while it runs.
  int killed_by(std::chrono::milliseconds timeout = 0ms) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!status_) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        status_ = st;
        break;
      }
      if (std::chrono::steady_clock::now() >= end) return 0;
      std::this_thread::sleep_for(10ms);
    }
    return WIFSIGNALED(*status_) ? WTERMSIG(*status_) : -1;
  }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

json occupy(std::uint16_t port, bool force = false) {
  json flags = {{"port", std::to_string(port)}};
  if (force) flags["force"] = "true";
  return {{"target", "network"}, {"action", "occupy"}, {"flags", flags}};
}

bool contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("occupy: a bind on the port fails with EADDRINUSE until destroy frees it") {
  Daemon t;
  auto c = t.d.client();
  check_free(8080);

  const Answer a = create(c, occupy(8080));
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  const json result = a.body["data"]["result"];
  INFO(result.dump());
  CHECK(result["port"] == 8080);
  CHECK(result["protocol"] == "tcp");
  CHECK(result["stopped"].empty());
  if (have_ipv6())
    CHECK(result["addresses"] == json::array({"0.0.0.0", "::"}));
  else
    CHECK(result["addresses"] == json::array({"0.0.0.0"}));
  check_taken(8080);
  // Another port is untouched.
  CHECK(bind_errno("0.0.0.0", 8081) == 0);
  CHECK(t.claims() == 1);

  check_destroyed(c, a.uid());
  check_free(8080);
  CHECK(t.claims() == 0);
  CHECK_FALSE(fs::exists(t.occupy_state() / "experiments" / a.uid()));
  // The destroy's report, as GET shows it: this daemon closed the socket.
  CHECK(experiment(c, a.uid())["destroy_result"] == json{{"port", 8080}, {"released", true}});
  // A second destroy changes nothing and is fine.
  check_destroyed(c, a.uid());
  check_free(8080);
}

TEST_CASE("occupy: bad ports are 400 on flags.port and change nothing") {
  Daemon t;
  auto c = t.d.client();
  for (const std::string bad : {"0", "65536", "-1", "80,81", "80-90", "http", ""}) {
    CAPTURE(bad);
    const Answer a =
        create(c, {{"target", "network"}, {"action", "occupy"}, {"flags", {{"port", bad}}}});
    INFO(a.body.dump());
    CHECK(a.status == 400);
    CHECK(a.field() == "flags.port");
  }
  CHECK(t.claims() == 0);
}

TEST_CASE("occupy: the daemon's own API port is refused, force or not, and it still answers") {
  Daemon t;
  auto c = t.d.client();
  const auto api = static_cast<std::uint16_t>(t.d.port);
  for (bool force : {false, true}) {
    CAPTURE(force);
    const Answer a = create(c, occupy(api, force));
    INFO(a.body.dump());
    CHECK(a.status == 400);
    CHECK(a.field() == "flags.port");
    CHECK(contains(a.message(), "API port"));
  }
  // Still there, answering on the same port.
  auto again = t.d.client();
  auto got = again.Get("/v1/experiments", auth());
  REQUIRE(got);
  CHECK(got->status == 200);
  CHECK(t.claims() == 0);
}

TEST_CASE("occupy: a busy port is 409 naming its holder; with force the holder is stopped") {
  Daemon t;
  auto c = t.d.client();

  SUBCASE("a holder that exits on SIGTERM") {
    Holder h(8080);
    check_taken(8080);  // by the holder
    const Answer busy = create(c, occupy(8080));
    INFO(busy.body.dump());
    CHECK(busy.status == 409);
    CHECK(contains(busy.message(), "pid " + std::to_string(h.pid()) + " (sleep)"));
    CHECK(h.killed_by() == 0);  // untouched
    CHECK(t.claims() == 0);

    // The dry run names whom force would stop, and stops nobody.
    json dry_body = occupy(8080, true);
    dry_body["dry_run"] = true;
    const Answer dry = create(c, dry_body);
    INFO(dry.body.dump());
    CHECK(dry.status == 200);
    CHECK(dry.body["data"]["plan"]["free"] == false);
    CHECK(dry.body["data"]["plan"]["would_stop"][0]["pid"] == h.pid());
    CHECK(h.killed_by(200ms) == 0);

    const Answer forced = create(c, occupy(8080, true));
    REQUIRE_MESSAGE(forced.status == 201, forced.body.dump());
    const json result = forced.body["data"]["result"];
    INFO(result.dump());
    REQUIRE(result["stopped"].size() == 1);
    CHECK(result["stopped"][0]["pid"] == h.pid());
    CHECK(result["stopped"][0]["comm"] == "sleep");
    CHECK(result["stopped"][0]["signal"] == "SIGTERM");
    CHECK(contains(result.value("note", ""), "not started again"));
    CHECK(h.killed_by(5s) == SIGTERM);
    check_taken(8080);  // by the daemon now

    check_destroyed(c, forced.uid());
    check_free(8080);
    CHECK(t.claims() == 0);
    // The report names whom create stopped: they stay stopped.
    const json report = experiment(c, forced.uid())["destroy_result"];
    INFO(report.dump());
    CHECK(report["released"] == true);
    REQUIRE(report["stopped"].size() == 1);
    CHECK(report["stopped"][0]["pid"] == h.pid());
    CHECK(contains(report.value("note", ""), "not started again"));
  }

  SUBCASE("a holder that ignores SIGTERM is killed") {
    Holder h(8082, "/bin/sleep", true);
    const auto started = std::chrono::steady_clock::now();
    const Answer forced = create(c, occupy(8082, true));
    REQUIRE_MESSAGE(forced.status == 201, forced.body.dump());
    const json result = forced.body["data"]["result"];
    INFO(result.dump());
    REQUIRE(result["stopped"].size() == 1);
    CHECK(result["stopped"][0]["signal"] == "SIGKILL");
    CHECK(h.killed_by(5s) == SIGKILL);
    // SIGTERM had its bounded wait (3 s), not more.
    CHECK(std::chrono::steady_clock::now() - started < 8s);
    check_taken(8082);
    check_destroyed(c, forced.uid());
    check_free(8082);
  }
}

TEST_CASE("occupy --force never stops a protected holder: 409 naming why, nothing changed") {
  Daemon t;
  auto c = t.d.client();

  SUBCASE("a process whose command line holds 'blade'") {
    TempDir bin("occupy-holder");
    const fs::path exe = bin / "blade-sleeper";
    fs::copy_file("/bin/sleep", exe);
    fs::permissions(exe, fs::perms(0755));
    Holder h(8083, exe.string());
    const Answer a = create(c, occupy(8083, true));
    INFO(a.body.dump());
    CHECK(a.status == 409);
    CHECK(contains(a.message(), "pid " + std::to_string(h.pid())));
    CHECK(contains(a.message(), "blade process"));
    CHECK(h.killed_by(500ms) == 0);
    check_taken(8083);  // still the holder's
  }

  SUBCASE("the parent of bladed (this test)") {
    const int fd = listen_fd(8084, SOCK_CLOEXEC);
    const Answer a = create(c, occupy(8084, true));
    INFO(a.body.dump());
    CHECK(a.status == 409);
    CHECK(contains(a.message(), "pid " + std::to_string(::getpid())));
    CHECK(contains(a.message(), "parent of bladed"));
    check_taken(8084);
    ::close(fd);
  }
  CHECK(t.claims() == 0);
}

TEST_CASE("occupy: a second occupy of the port is 409 naming the active uid") {
  Daemon t;
  auto c = t.d.client();
  const Answer first = create(c, occupy(8080));
  REQUIRE_MESSAGE(first.status == 201, first.body.dump());
  for (bool force : {false, true}) {
    CAPTURE(force);
    const Answer second = create(c, occupy(8080, force));
    INFO(second.body.dump());
    CHECK(second.status == 409);
    CHECK(contains(second.message(), first.uid()));
  }
  check_taken(8080);
  check_destroyed(c, first.uid());
  check_free(8080);
  const Answer third = create(c, occupy(8080));
  REQUIRE_MESSAGE(third.status == 201, third.body.dump());
  check_destroyed(c, third.uid());
}

TEST_CASE("occupy: SIGKILL of bladed frees the port; the restart's recovery destroys it") {
  Daemon t;
  auto c = t.d.client();
  const Answer a = create(c, occupy(8080));
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  const int old_pid = t.d.process->pid();
  check_taken(8080);

  t.d.crash();
  check_free(8080);  // the socket died with the daemon
  t.d.restart();
  auto c2 = t.d.client();
  CHECK(wait_destroyed(c2, a.uid()) == "destroyed");
  CHECK(t.claims() == 0);
  CHECK_FALSE(fs::exists(t.occupy_state() / "experiments" / a.uid()));
  // Recovery worked from the record: it names the daemon that held the socket.
  CHECK(contains(read_text(t.d.log_file()),
                 "died with the daemon that made it (pid " + std::to_string(old_pid) + ")"));
  // And says so in the destroy's report, through the API.
  const json report = experiment(c2, a.uid())["destroy_result"];
  INFO(report.dump());
  CHECK(report["port"] == 8080);
  CHECK(report["released"] == false);
  CHECK(contains(report.value("already_gone", ""),
                 "died with the daemon that made it (pid " + std::to_string(old_pid) + ")"));
  check_free(8080);

  // The port is the new daemon's to occupy.
  const Answer again = create(c2, occupy(8080));
  REQUIRE_MESSAGE(again.status == 201, again.body.dump());
  check_taken(8080);
  check_destroyed(c2, again.uid());
  check_free(8080);
}

// The failpoints exist in test builds only (meson option failpoints).
#ifdef BLADE_FAILPOINTS

TEST_CASE("occupy: a crash inside create or destroy is undone from the restore record alone") {
  Daemon t;
  SUBCASE("after the claim, before the answer") {
    os::killed_at(t.d, "network.occupy.after_claim", occupy(8080));
  }
  SUBCASE("with force, after the holder is stopped, before the bind") {
    Holder h(8080);
    os::killed_at(t.d, "network.occupy.after_stop", occupy(8080, true));
    CHECK(h.killed_by(5s) == SIGTERM);
  }
  SUBCASE("in destroy, before the socket is closed") {
    const std::string uid = os::killed_at(t.d, "network.occupy.destroy.before_close", occupy(8080),
                                          [] { check_taken(8080); });
    auto c = t.d.client();
    CHECK(wait_destroyed(c, uid) == "destroyed");
  }
  // Recovery ran before restart() returned: no claim, no record, port free.
  CHECK(t.claims() == 0);
  CHECK((!fs::exists(t.occupy_state() / "experiments") ||
         fs::is_empty(t.occupy_state() / "experiments")));
  check_free(8080);
  auto c = t.d.client();
  const Answer again = create(c, occupy(8080));
  REQUIRE_MESSAGE(again.status == 201, again.body.dump());
  check_destroyed(c, again.uid());
}

#endif  // BLADE_FAILPOINTS
