// process kill / stop / load rows. The names in the examples (SimpleHTTPServer,
// java, demo) would hit whatever else runs on a shared machine, so each row
// names a process only this run started: a copy of sleep whose command line
// or name carries a token unique to the run. A bystander started alongside
// must come through untouched.
#include <pwd.h>
#include <signal.h>

#include <memory>

#include "../support/child_process.hpp"
#include "../support/eventually.hpp"
#include "../support/temp_dir.hpp"
#include "command_words.hpp"
#include "example_row.hpp"
#include "host_probes.hpp"

namespace blade::test::compat {
namespace {

using namespace std::chrono_literals;

std::string unique_token(const std::string &stem) {
  static int n = 0;
  return stem + std::to_string(::getpid() % 100000) + "x" + std::to_string(n++);
}

// Copies of /bin/sleep started as `<dir>/<sub>/<name> 300`: `name` is the
// process name (comm), `sub` puts a word in its command line only.
struct Sleepers {
  TempDir dir{"compat-proc"};
  std::vector<std::unique_ptr<ChildProcess>> started;

  ChildProcess &start(const std::string &sub, const std::string &name) {
    const auto exe = dir / sub / name;
    fs::create_directories(exe.parent_path());
    if (!fs::exists(exe)) {
      fs::copy_file("/bin/sleep", exe);
      fs::permissions(exe, fs::perms(0755));
    }
    started.push_back(std::make_unique<ChildProcess>(std::vector<std::string>{exe.string(), "300"}));
    ChildProcess &c = *started.back();
    const std::string comm = "/proc/" + std::to_string(c.pid()) + "/comm";
    if (!eventually([&] { return read_text(comm) == name.substr(0, 15) + "\n"; }, 5s))
      throw std::runtime_error("fixture " + exe.string() + " did not start");
    return c;
  }
};

bool alive_and_running(const ChildProcess &c) {
  const char s = process_state(c.pid());
  return s == 'S' || s == 'R' || s == 'D';
}

// The bystander still runs a while after the target was hit: a signal sent
// to it as well may take that long to act on a loaded machine.
bool spared(const ChildProcess &bystander) {
  std::this_thread::sleep_for(300ms);
  return alive_and_running(bystander);
}

// How the process ended, or that it still runs.
std::string ending(ChildProcess &c) {
  const auto code = c.exit_code(5s);
  if (!code) return "still runs (state " + std::string(1, process_state(c.pid())) + ")";
  return *code < 0 ? "killed by signal " + std::to_string(-*code)
                   : "exited " + std::to_string(*code);
}

struct ProcessCase {
  Sleepers sleepers;
  ChildProcess *target = nullptr;
  ChildProcess *bystander = nullptr;
  std::unique_ptr<ChildProcess> listener;
  TempDir dir{"compat-port"};
};

// The target must end by `signal` (0: any signal), the bystander run on.
Outcome killed(const std::shared_ptr<ProcessCase> &c, ChildProcess &target, int signal) {
  const std::string how = ending(target);
  const bool ok = signal ? how == "killed by signal " + std::to_string(signal)
                         : how.rfind("killed by signal", 0) == 0;
  const bool untouched = spared(*c->bystander);
  return {ok && untouched, "target " + how + "; bystander " + (untouched ? "untouched" : "hit")};
}

Outcome stopped(const std::shared_ptr<ProcessCase> &c) {
  const bool stop = eventually([&] { return process_state(c->target->pid()) == 'T'; }, 5s);
  const bool untouched = spared(*c->bystander);
  return {stop && untouched, std::string("target ") + (stop ? "stopped (T)" : "not stopped") +
                                 "; bystander " + (untouched ? "untouched" : "hit")};
}

Outcome resumed(const std::shared_ptr<ProcessCase> &c) {
  const bool back = eventually([&] { return alive_and_running(*c->target); }, 5s);
  return {back, std::string("target ") + (back ? "runs again" : "still stopped")};
}

Outcome nothing_to_undo(const std::string &) { return held("nothing to undo"); }

// A stop must leave the target stopped until destroy resumes it; a kill must
// end it by a signal (nothing to undo).
Fixture with_checks(Fixture fx, const std::shared_ptr<ProcessCase> &c, bool stop) {
  if (stop) {
    fx.effect = [c](const std::string &) { return stopped(c); };
    fx.clean = [c](const std::string &) { return resumed(c); };
  } else {
    fx.effect = [c](const std::string &) { return killed(c, *c->target, 0); };
    fx.clean = nothing_to_undo;
  }
  return fx;
}

// `--process SimpleHTTPServer`: the token is in the command line only (as in
// `python -m SimpleHTTPServer`), the process name is python.
Fixture by_cmdline(std::vector<std::string> words, bool stop) {
  auto c = std::make_shared<ProcessCase>();
  const std::string token = unique_token("SimpleHTTPServer");
  c->target = &c->sleepers.start(token, "python");
  c->bystander = &c->sleepers.start("other", "python");
  Fixture fx;
  fx.words = with_flag(words, "process", token);
  fx.substituted = "--process " + token +
                   ": only this run's fixture (`" + (c->sleepers.dir / token / "python").string() +
                   " 300`, named python) has it in its command line";
  return with_checks(std::move(fx), c, stop);
}

// `--process-cmd java`: a process named by the token; the bystander has the
// token in its command line but another name, so only an exact name matches.
Fixture by_name(std::vector<std::string> words, bool stop) {
  auto c = std::make_shared<ProcessCase>();
  const std::string name = unique_token("jv");
  c->target = &c->sleepers.start("bin", name);
  c->bystander = &c->sleepers.start(name, "python");
  Fixture fx;
  fx.words = with_flag(words, "process-cmd", name);
  fx.substituted = "--process-cmd " + name + ": a process of that name started by this run; " +
                   "the bystander has it in its command line only";
  return with_checks(std::move(fx), c, stop);
}

// `--process demo --ignore-not-found`: a name nothing has; success, nothing hit.
Fixture not_found(std::vector<std::string> words) {
  auto c = std::make_shared<ProcessCase>();
  const std::string token = unique_token("demo");
  c->target = &c->sleepers.start("bin", "python");
  c->bystander = c->target;
  Fixture fx;
  fx.words = with_flag(words, "process", token);
  fx.substituted = "--process " + token + ": a name no process has (demo may exist here)";
  fx.effect = [c](const std::string &) {
    const bool untouched = spared(*c->bystander);
    return Outcome{untouched, std::string("created with nothing matched; bystander ") +
                                  (untouched ? "untouched" : "hit")};
  };
  fx.clean = [c](const std::string &) {
    return Outcome{alive_and_running(*c->bystander), "bystander runs"};
  };
  return fx;
}

// `--local-port 8080 --signal 15`: the port a fixture listens on.
Fixture by_port(std::vector<std::string> words) {
  auto c = std::make_shared<ProcessCase>();
  const auto port_file = c->dir / "port";
  c->listener = std::make_unique<ChildProcess>(
      std::vector<std::string>{BLADE_COMPAT_FIXTURE, "listen", port_file.string()});
  if (!eventually([&] { return fs::exists(port_file); }, 5s))
    throw std::runtime_error("the listening fixture did not start");
  const std::string port = read_text(port_file).substr(0, read_text(port_file).find('\n'));
  c->target = c->listener.get();
  c->bystander = &c->sleepers.start("bin", "python");
  Fixture fx;
  fx.words = with_flag(words, "local-port", port);
  fx.substituted = "--local-port " + port + ": the port this run's fixture listens on";
  fx.effect = [c](const std::string &) { return killed(c, *c->listener, SIGTERM); };
  fx.clean = nothing_to_undo;
  return fx;
}

// `process load --count 10 --user test`: as a user this machine has. The
// load's processes are told apart from any other of that user by the
// experiment's uid in their command line (Blade names them
// blade-process-load-<uid>), as other tests may run processes as nobody too.
Fixture load_as_user(std::vector<std::string> words) {
  const passwd *pw = ::getpwnam("nobody");
  if (!pw) throw std::runtime_error("no user nobody on this machine");
  const uid_t user = pw->pw_uid;
  Fixture fx;
  fx.words = with_flag(words, "user", "nobody");
  fx.substituted = "--user nobody: this machine has no user test";
  fx.effect = [user](const std::string &uid) {
    int now = 0;
    const bool up = eventually([&] { return (now = processes_of_user(user, uid)) == 10; }, 5s);
    return Outcome{up, std::to_string(now) + " processes of the load run as nobody"};
  };
  fx.clean = [user](const std::string &uid) {
    int now = 0;
    const bool gone = eventually([&] { return (now = processes_of_user(user, uid)) == 0; }, 5s);
    return Outcome{gone, std::to_string(now) + " processes of the load left"};
  };
  return fx;
}

Row row(std::string example, std::function<Fixture(std::vector<std::string>)> make) {
  return {"process", example, [example, make](Env &) { return make(command_words(example)); }};
}

}  // namespace

std::vector<Row> process_rows() {
  return {
      row("blade create process kill --process SimpleHTTPServer",
          [](auto w) { return by_cmdline(w, false); }),
      row("blade create process kill --process-cmd java", [](auto w) { return by_name(w, false); }),
      row("blade c process kill --local-port 8080 --signal 15", by_port),
      row("blade c process kill --process demo --ignore-not-found", not_found),
      row("blade create process stop --process SimpleHTTPServer",
          [](auto w) { return by_cmdline(w, true); }),
      row("blade create process stop --process-cmd java", [](auto w) { return by_name(w, true); }),
      row("blade create process stop --process demo --ignore-not-found", not_found),
      row("blade c process load --count 10 --user test", load_as_user),
  };
}

}  // namespace blade::test::compat
