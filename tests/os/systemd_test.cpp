// systemd stop on a unit of a real systemd: Debian's systemd booted as PID 1
// of a user-mode Linux guest (tests/support/uml_vm.hpp; this machine's PID 1
// is not systemd), with D-Bus. The guest runs the "guest:" cases of this
// binary as a oneshot service; each writes a unit that runs sleep, starts it,
// and watches its main process through systemctl and /proc. time travel's
// disableNtp is measured there too: timedated switches timesyncd off and on.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "../support/uml_vm.hpp"
#include "failpoint_kill.hpp"
#include "os_test_support.hpp"

namespace fs = std::filesystem;
using namespace blade::test;
using namespace blade::test::os;
using namespace std::chrono_literals;

namespace {

// systemctl's answer (never a shell: argv, output through a file).
std::string systemctl(const std::vector<std::string> &args) {
  TempDir t("systemctl");
  std::vector<std::string> argv = {"/usr/bin/systemctl"};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess p(argv, {}, (t / "out").string());
  p.exit_code(30s);
  std::string out = read_text(t / "out");
  while (!out.empty() && out.back() == '\n')
    out.pop_back();
  return out;
}

std::string show(const std::string &unit, const std::string &prop) {
  return systemctl({"show", "-p", prop, "--value", unit});
}

bool alive(const std::string &pid) {
  return !pid.empty() && pid != "0" && fs::exists("/proc/" + pid);
}

// A unit of our own that runs sleep, loaded and started.
struct SleepUnit {
  std::string name = "blade-sleep.service";
  SleepUnit() {
    spit("/etc/systemd/system/" + name,
         "[Unit]\nDescription=blade test sleeper\n[Service]\nExecStart=/bin/sleep 600\n");
    systemctl({"daemon-reload"});
    systemctl({"start", name});
    REQUIRE(eventually([&] { return show(name, "ActiveState") == "active"; }));
  }
};

}  // namespace

TEST_CASE("systemd stop and time travel's disableNtp under systemd booted in user-mode Linux") {
  UmlOptions o;
  o.systemd = true;
  UmlResult r = run_guest_cases("guest: *", o);
  MESSAGE("user-mode Linux with systemd as PID 1: "
          << r.seconds << " s (boot, cases, power-off); guest " << r.summary());
  INFO(r.report());
  CHECK(r.ok());
}

TEST_CASE("systemd stop where no systemd answers is refused with the reason, changing nothing") {
  // This machine's PID 1 is not systemd; a host where it is still has no
  // such unit. Either way ChaosBlade's SystemdNotFound is named.
  BladedProcess d(os_options());
  auto c = d.client();
  auto a = create(c, "systemd", "stop", {{"service", "blade-no-such-unit"}});
  INFO(a.body.dump());
  CHECK(a.status == 422);
  CHECK(a.message().find("SystemdNotFound") != std::string::npos);
  if (!fs::exists("/run/dbus/system_bus_socket"))
    CHECK(a.message().find("systemd is not answering") != std::string::npos);
  CHECK(create(c, "systemd", "stop", {{"service", "bad name"}}).status == 400);
}

TEST_CASE("guest: systemd stop stops a running unit and destroy starts it again" *
          doctest::skip()) {
  REQUIRE(show("basic.target", "ActiveState") == "active");  // systemd answers
  SleepUnit u;
  const std::string pid = show(u.name, "MainPID");
  REQUIRE(alive(pid));
  BladedProcess d(os_options());
  auto c = d.client();

  // Bad input and units that are not running change nothing.
  CHECK(create(c, "systemd", "stop", {{"service", "bad name;rm"}}).status == 400);
  auto missing = create(c, "systemd", "stop", {{"service", "blade-no-such-unit"}});
  CHECK(missing.status != 201);
  CHECK(missing.message().find("SystemdNotFound") != std::string::npos);
  CHECK(missing.message().find("blade-no-such-unit.service") != std::string::npos);
  CHECK(create(c, "systemd", "stop", {{"service", "dbus"}}).status == 400);
  CHECK(show(u.name, "MainPID") == pid);

  auto a = create(c, "systemd", "stop", {{"service", "blade-sleep"}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  CHECK(a.body["data"]["result"]["service"] == u.name);
  CHECK(show(u.name, "ActiveState") == "inactive");
  CHECK(eventually([&] { return !alive(pid); }));
  // A stopped unit has nothing to stop: ChaosBlade's SystemdNotFound.
  auto again = create(c, "systemd", "stop", {{"service", u.name}});
  CHECK(again.status != 201);

  check_destroyed(c, a.uid());
  CHECK(show(u.name, "ActiveState") == "active");
  const std::string restarted = show(u.name, "MainPID");
  CHECK(alive(restarted));
  CHECK(restarted != pid);
  // Destroy again: running already, so left alone.
  destroy(c, a.uid());
  CHECK(show(u.name, "MainPID") == restarted);
}

TEST_CASE("guest: systemd stop is undone by the recovery of a bladed killed under it" *
          doctest::skip()) {
  SleepUnit u;
  BladedProcess d(os_options());
  auto c = d.client();
  auto a = create(c, "systemd", "stop", {{"service", u.name}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  CHECK(show(u.name, "ActiveState") == "inactive");
  d.crash();
  CHECK(show(u.name, "ActiveState") == "inactive");
  d.restart();  // returns once recovery has run
  CHECK(show(u.name, "ActiveState") == "active");
  CHECK(alive(show(u.name, "MainPID")));
}

#ifdef BLADE_FAILPOINTS
TEST_CASE(
    "guest: systemd stop: a bladed killed at each failpoint leaves the unit running once "
    "it starts again" *
    doctest::skip()) {
  SleepUnit u;
  BladedProcess d(os_options());
  const json body = {{"target", "systemd"}, {"action", "stop"}, {"flags", {{"service", u.name}}}};
  killed_at_each(
      d,
      {"os.systemd.stop.before_stop", "os.systemd.stop.after_stop",
       "os.systemd.stop.destroy.before_start", "os.systemd.stop.destroy.after_start"},
      body, [&] { CHECK(show(u.name, "ActiveState") == "inactive"); },
      [&] {
        CHECK(show(u.name, "ActiveState") == "active");
        CHECK(alive(show(u.name, "MainPID")));
      });
}
#endif

TEST_CASE("guest: time travel disables NTP through timedated and enables it again" *
          doctest::skip()) {
  const auto timedatectl = [](std::vector<std::string> args) {
    TempDir t("timedatectl");
    args.insert(args.begin(), "/usr/bin/timedatectl");
    ChildProcess p(args, {}, (t / "out").string());
    p.exit_code(30s);
    return read_text(t / "out");
  };
  const auto ntp = [&] { return timedatectl({"show", "-p", "NTP", "--value"}); };
  // NTP on, as on a host that syncs. timesyncd cannot start in this guest
  // (systemd takes it for a container, and its sandbox fails on the hostfs
  // overlay), so timedated gets an NTP unit of the guest's own through its
  // documented ntp-units.d list: a sleeper it starts and stops like
  // timesyncd. What is measured is timedated's real SetNTP.
  fs::create_directories("/etc/systemd/ntp-units.d");
  spit("/etc/systemd/ntp-units.d/50-blade.list", "blade-ntp.service\n");
  spit("/etc/systemd/system/blade-ntp.service",
       "[Unit]\nDescription=blade stand-in NTP daemon\n[Service]\nExecStart=/bin/sleep 600\n"
       "[Install]\nWantedBy=multi-user.target\n");
  fs::create_symlink("/dev/null", "/etc/systemd/system/systemd-timesyncd.service");
  systemctl({"daemon-reload"});
  systemctl({"stop", "systemd-timedated"});  // it reads the lists when it starts
  const std::string set = timedatectl({"set-ntp", "true"});
  INFO(set);
  REQUIRE_MESSAGE(eventually([&] { return ntp() == "yes\n"; }, 30s),
                  systemctl({"status", "blade-ntp"}));
  BladedProcess d(os_options());
  auto c = d.client();
  const auto skew = [] {
    return std::chrono::system_clock::now().time_since_epoch() -
           std::chrono::steady_clock::now().time_since_epoch();
  };
  const auto before = skew();
  auto a = create(c, "time", "travel", {{"offset", "-1h"}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  CHECK(a.body["data"]["result"].value("ntp", "").find("disabled") == 0);
  CHECK(ntp() == "no\n");
  CHECK(show("blade-ntp.service", "ActiveState") == "inactive");
  CHECK(std::chrono::abs(skew() - before + 1h) < 50ms);
  check_destroyed(c, a.uid());
  CHECK(ntp() == "yes\n");
  CHECK(show("blade-ntp.service", "ActiveState") == "active");
  CHECK(std::chrono::abs(skew() - before) < 50ms);
}
