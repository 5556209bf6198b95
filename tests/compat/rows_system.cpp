// systemd stop, time travel and strace rows.
// - systemd: a unit this run installs under /run/systemd/system; the row
//   runs in a user-mode Linux guest booted with systemd as PID 1 (the test
//   machine's init need not be systemd), and checks it is there.
// - time travel moves the wall clock every process of the machine shares:
//   the rows run in a plain user-mode Linux guest, whose clock is the test's
//   own; the host's case says so with BLADE_TEST_OWN_CLOCK=1 in the guest's
//   environment, and anywhere else the rows fail, saying so.
// - strace: `--pid 1` would be init; the rows trace a fixture that maps a
//   page every 20 ms and logs how each mmap went.
#include <time.h>

#include <cstdlib>
#include <fstream>

#include "../support/child_process.hpp"
#include "../support/eventually.hpp"
#include "../support/temp_dir.hpp"
#include "command_words.hpp"
#include "example_row.hpp"

namespace blade::test::compat {
namespace {

using namespace std::chrono_literals;

// Runs argv to its end (no shell); its exit code and output.
std::pair<int, std::string> run(const std::vector<std::string> &argv) {
  TempDir t("compat-run");
  const auto log = t / "out";
  ChildProcess p(argv, {}, log.string());
  const int code = p.exit_code(30s).value_or(-1);
  return {code, read_text(log)};
}

std::string systemctl_state(const std::string &unit) {
  const std::string out = run({"/usr/bin/systemctl", "is-active", unit}).second;
  return out.substr(0, out.find('\n'));
}

Fixture systemd_stop(std::vector<std::string> words) {
  Fixture fx;
  if (!fs::exists("/run/systemd/system")) {
    const std::string init = read_text("/proc/1/comm");
    fx.cannot_run = "no systemd runs this machine (pid 1 is " + init.substr(0, init.find('\n')) +
                    "); the row needs a unit of a real systemd";
    return fx;
  }
  struct Unit {
    std::string name = "compat-" + std::to_string(::getpid()) + ".service";
    fs::path file = fs::path("/run/systemd/system") / name;
    ~Unit() {
      run({"/usr/bin/systemctl", "stop", name});
      fs::remove(file);
      run({"/usr/bin/systemctl", "daemon-reload"});
    }
  };
  auto unit = std::make_shared<Unit>();
  std::ofstream(unit->file) << "[Service]\nExecStart=/bin/sleep 300\n";
  run({"/usr/bin/systemctl", "daemon-reload"});
  if (run({"/usr/bin/systemctl", "start", unit->name}).first != 0)
    throw std::runtime_error("cannot start the fixture unit " + unit->name);
  fx.words = with_flag(words, "service", unit->name);
  fx.substituted = "--service " + unit->name + ": a unit this run installed";
  fx.effect = [unit](const std::string &) {
    std::string s;
    const bool ok = eventually([&] { return (s = systemctl_state(unit->name)) == "inactive"; }, 5s);
    return Outcome{ok, unit->name + " is " + s};
  };
  fx.clean = [unit](const std::string &) {
    std::string s;
    const bool ok = eventually([&] { return (s = systemctl_state(unit->name)) == "active"; }, 5s);
    return Outcome{ok, unit->name + " is " + s};
  };
  return fx;
}

double seconds_of(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

// How far the wall clock is from where it would be untouched since `mark`.
struct ClockMark {
  double real = seconds_of(CLOCK_REALTIME), mono = seconds_of(CLOCK_MONOTONIC);
  double drift() const {
    return (seconds_of(CLOCK_REALTIME) - real) - (seconds_of(CLOCK_MONOTONIC) - mono);
  }
};

Fixture time_travel(std::vector<std::string> words, double offset) {
  Fixture fx;
  const char *own = std::getenv("BLADE_TEST_OWN_CLOCK");
  if (!own || std::string(own) != "1") {
    fx.cannot_run =
        "would move the wall clock of this whole machine; runs only where the clock is the "
        "test's own (BLADE_TEST_OWN_CLOCK=1, e.g. inside user-mode Linux)";
    return fx;
  }
  auto mark = std::make_shared<ClockMark>();
  fx.words = std::move(words);
  fx.effect = [mark, offset](const std::string &) {
    const double d = mark->drift();
    return Outcome{std::abs(d - offset) < 2, "the clock moved " + std::to_string(d) + " s"};
  };
  fx.clean = [mark](const std::string &) {
    const double d = mark->drift();
    return Outcome{std::abs(d) < 1, "the clock is " + std::to_string(d) + " s off after destroy"};
  };
  return fx;
}

struct Mapper {
  TempDir dir{"compat-strace"};
  fs::path log = dir / "mmap.log";
  std::unique_ptr<ChildProcess> process;
  Mapper() {
    process = std::make_unique<ChildProcess>(
        std::vector<std::string>{BLADE_COMPAT_FIXTURE, "mmap", log.string()});
    if (!eventually([&] { return !read_text(log).empty(); }, 5s))
      throw std::runtime_error("the mmap fixture did not start");
  }
  std::vector<std::string> lines() const { return lines_of(read_text(log)); }
  // The TracerPid line of its status: 0 when nothing traces it.
  std::string tracer() const {
    std::ifstream in("/proc/" + std::to_string(process->pid()) + "/status");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("TracerPid:", 0) == 0) return line.substr(line.find_first_not_of(" \t", 10));
    return "?";
  }
};

// Untraced again, alive, and its mmaps after destroy fast and successful.
Outcome mapper_untouched(const std::shared_ptr<Mapper> &m) {
  const bool untraced = eventually([&] { return m->tracer() == "0"; }, 5s);
  const auto seen = m->lines().size();
  std::this_thread::sleep_for(300ms);
  const auto lines = m->lines();
  bool fine = lines.size() >= seen + 5;
  for (std::size_t i = seen; i < lines.size(); ++i)
    fine = fine && lines[i].size() >= 3 && lines[i].substr(lines[i].size() - 2) == "ok" &&
           std::stoll(lines[i]) < 100;
  return {untraced && fine, "TracerPid " + m->tracer() + ", " +
                                std::to_string(lines.size() - seen) + " mmaps in 0.3 s after " +
                                "destroy" + (fine ? ", all fast and ok" : ", not all fast and ok")};
}

Fixture strace_fixture(std::vector<std::string> words, std::string substituted,
                       std::function<Outcome(const Mapper &)> effect) {
  auto m = std::make_shared<Mapper>();
  Fixture fx;
  fx.words = with_flag(words, "pid", std::to_string(m->process->pid()));
  fx.substituted = "--pid " + std::to_string(m->process->pid()) +
                   " for 1: a fixture mapping a page every 20 ms; " + substituted;
  fx.effect = [m, effect](const std::string &) { return effect(*m); };
  fx.clean = [m](const std::string &) { return mapper_untouched(m); };
  return fx;
}

Row row(std::string target, std::string example,
        std::function<Fixture(std::vector<std::string>)> make, Where where = Where::host) {
  return {target, example, [example, make](Env &) { return make(command_words(example)); },
          where};
}

}  // namespace

std::vector<Row> system_rows() {
  return {
      row("systemd", "blade create systemd stop --service test", systemd_stop,
          Where::systemd_guest),
      row("time", "blade create time travel --offset 5m30s",
          [](auto w) { return time_travel(w, 330); }, Where::clock_guest),
      row("time", "blade create time travel --offset 5m30s --disableNtp false",
          [](auto w) { return time_travel(w, 330); }, Where::clock_guest),
      row("time", "blade create time travel --offset -2h30m",
          [](auto w) { return time_travel(w, -9000); }, Where::clock_guest),
      row("strace",
          "blade create strace delay --pid 1 --syscall-name mmap --time 10s --delay-loc enter "
          "--first=1",
          [](auto w) {
            return strace_fixture(with_flag(w, "time", "1s"), "--time 1s for 10s, a short row",
                                  [](const Mapper &m) {
                                    long long slowest = 0;
                                    const bool ok = eventually(
                                        [&] {
                                          for (const auto &l : m.lines())
                                            slowest = std::max(slowest, std::stoll(l));
                                          return slowest >= 950;
                                        },
                                        5s);
                                    return Outcome{ok, "slowest mmap took " +
                                                           std::to_string(slowest) + " ms"};
                                  });
          }),
      row("strace",
          "blade create strace error --pid 1 --syscall-name mmap --return-value XX --delay-loc "
          "enter --first=1",
          [](auto w) {
            return strace_fixture(
                with_flag(w, "return-value", "ENOMEM"),
                "--return-value ENOMEM for the placeholder XX",
                [](const Mapper &m) {
                  std::size_t errors = 0;
                  const bool ok = eventually(
                      [&] {
                        errors = 0;
                        for (const auto &l : m.lines())
                          errors += l.find(" err 12") != std::string::npos;
                        return errors >= 1;
                      },
                      5s);
                  return Outcome{ok, std::to_string(errors) + " mmap(s) failed with ENOMEM"};
                });
          }),
  };
}

}  // namespace blade::test::compat
