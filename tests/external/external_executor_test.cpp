// The external fallback against a real binary: the stand-in chaos_standin,
// run as real processes that touch real files. Each test ends by checking
// that nothing is left: no marker, no child process (zombies included), no
// keeper thread.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "../../core/src/external/child_process.hpp"
#include "../support/eventually.hpp"
#include "../support/file_text.hpp"
#include "../support/temp_dir.hpp"
#include "blade/core/external/external_executor.hpp"
#include "blade/core/model/error.hpp"
#include "blade/core/model/log.hpp"
#include "blade/plugin.h"

namespace fs = std::filesystem;
using blade::CallOptions;
using blade::CallOutcome;
using blade::ExternalCatalog;
using blade::ExternalExecutor;
using blade::ExternalSettings;
using blade::FlagValues;
using blade::PluginRequest;
using blade::test::TempDir;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

const fs::path kStandinDir = BLADE_STANDIN_DIR;
const fs::path kSpecFile = BLADE_STANDIN_SPEC;
const std::string kUid = "0123456789abcdef";

// The stand-in appends every argv it gets here. Set before any test runs,
// while this process has one thread, and never changed.
const TempDir kLogDir("blade-standin-log");
const fs::path kLog = kLogDir / "argv.log";
const bool kLogSet = ::setenv("CHAOS_STANDIN_LOG", kLog.c_str(), 1) == 0;
// A daemon setting that must not reach a binary.
const bool kTokenSet = ::setenv("BLADE_API_TOKEN", "not-for-binaries", 1) == 0;
// Orphans (a binary's children whose parent was killed) are reparented to
// this process, so the tests see them, reap them and check how they died.
const bool kSubreaper = ::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0;

std::string bin() {
  return (kStandinDir / "chaos_standin").string();
}

ExternalSettings settings() {
  ExternalSettings s;
  s.bin_dir = kStandinDir;
  s.default_deadline = 10s;
  s.hang_check = 100ms;
  return s;
}

// The executor the catalog of the stand-in's spec gives for `action`.
ExternalExecutor executor_for(const std::string &action) {
  ExternalCatalog catalog;
  catalog.add({kSpecFile, blade::program_for_spec_file(kSpecFile).value()});
  const auto entry = catalog.resolve("host", "marker", action);
  REQUIRE(entry.has_value());
  return ExternalExecutor(settings(), entry->program, entry->action->process_hang);
}

PluginRequest request(const std::string &action, FlagValues flags = {}) {
  PluginRequest r;
  r.uid = kUid;
  r.target = "marker";
  r.action = action;
  r.flags = std::move(flags);
  return r;
}

using Argvs = std::vector<std::vector<std::string>>;

void clear_log() {
  std::ofstream(kLog, std::ios::trunc);
}

Argvs logged_argvs() {
  Argvs argvs;
  std::ifstream in(kLog);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> args;
    std::string arg;
    std::istringstream fields(line);
    while (std::getline(fields, arg, '\x1f'))
      args.push_back(arg);
    argvs.push_back(args);
  }
  return argvs;
}

using blade::test::eventually;
using blade::test::read_text;

bool process_exists(pid_t pid) {
  return fs::exists("/proc/" + std::to_string(pid));
}

// Fields 3.. of /proc/<pid>/stat (after the command name), "" if gone.
std::vector<std::string> stat_fields(pid_t pid) {
  const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(stat.substr(close + 1));
  std::vector<std::string> fields{"", "", ""};  // so that fields[22] is field 22
  std::string field;
  while (rest >> field)
    fields.push_back(field);
  return fields;
}

// Processes whose parent is this test process, zombies included.
std::vector<pid_t> children() {
  std::vector<pid_t> found;
  for (const auto &entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto fields = stat_fields(std::stoi(name));
    if (fields.size() > 4 && fields[4] == std::to_string(::getpid())) {
      found.push_back(std::stoi(name));
    }
  }
  return found;
}

unsigned long long start_time_of(pid_t pid) {
  const auto fields = stat_fields(pid);
  return fields.size() > 22 ? std::stoull(fields[22]) : 0;
}

// The wait status of `pid`, a child (or adopted orphan) of this process,
// once it has ended.
std::optional<int> reaped(pid_t pid, std::chrono::milliseconds limit = 3s) {
  int status = 0;
  if (eventually([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, limit)) return status;
  return std::nullopt;
}

// Threads of this process that are child keepers.
std::size_t keeper_count() {
  std::size_t n = 0;
  for (const auto &task : fs::directory_iterator("/proc/self/task")) {
    if (read_text(task.path() / "comm") == "blade-keeper\n") ++n;
  }
  return n;
}

// No child process (running or zombie) and no keeper thread remain.
void check_nothing_left() {
  CHECK_MESSAGE(eventually([] { return children().empty(); }), "child processes left behind");
  CHECK_MESSAGE(eventually([] { return keeper_count() == 0; }), "keeper threads left behind");
}

json parse(const std::string &text) {
  return json::parse(text);
}

}  // namespace

TEST_CASE("program_for_spec_file follows chaosblade-<kind>-spec-<version>.yaml") {
  using blade::program_for_spec_file;
  CHECK(program_for_spec_file("chaosblade-os-spec-1.7.4.yaml") == "chaos_os");
  CHECK(program_for_spec_file("/opt/chaosblade/yaml/chaosblade-cri-spec-1.8.0.yaml") ==
        "chaos_cri");
  CHECK(program_for_spec_file(kSpecFile) == "chaos_standin");
  CHECK_FALSE(program_for_spec_file("os-spec-1.7.4.yaml"));
  CHECK_FALSE(program_for_spec_file("chaosblade-os-spec-.yaml"));
  CHECK_FALSE(program_for_spec_file("chaosblade--spec-1.0.yaml"));
  CHECK_FALSE(program_for_spec_file("chaosblade-os-1.7.4.yaml"));
  CHECK_FALSE(program_for_spec_file("chaosblade-os-spec-1.7.4.yml"));
  CHECK_FALSE(program_for_spec_file("chaosblade-../x-spec-1.yaml"));
  CHECK_FALSE(program_for_spec_file("chaosblade-OS-spec-1.yaml"));
}

TEST_CASE("the argv follows the contract and reaches the binary verbatim") {
  REQUIRE(kLogSet);
  TempDir dir("blade-external");
  const std::string marker = (dir / "marker").string();
  ExternalExecutor executor = executor_for("t");  // the alias resolves to touch
  CHECK(executor.name() == "external:chaos_standin");
  PluginRequest r = request("touch", {{"path", marker},
                                      {"note", "two words"},
                                      {"count", "5"},
                                      {"force", "true"},    // a noArgs flag, normalised
                                      {"quiet", "false"},   // not passed
                                      {"empty", ""},        // not passed
                                      {"timeout", "30"}});  // the core's, not passed
  const std::vector<std::string> tail{"--uid=" + kUid, "--count=5", "--force=true",
                                      "--note=two words", "--path=" + marker};
  std::vector<std::string> create_argv{bin(), "create", "marker", "touch"};
  create_argv.insert(create_argv.end(), tail.begin(), tail.end());
  std::vector<std::string> destroy_argv{bin(), "destroy", "marker", "touch"};
  destroy_argv.insert(destroy_argv.end(), tail.begin(), tail.end());
  CHECK(executor.argv("create", r) == create_argv);
  CHECK(executor.argv("destroy", r) == destroy_argv);

  clear_log();
  const CallOutcome created = executor.create(r, {});
  REQUIRE_MESSAGE(created.ok(), created.message);
  CHECK(read_text(marker) == kUid);
  CHECK(created.result_json == json(kUid).dump());  // a string result stays a JSON string
  CHECK(parse(created.restore_json) == json{{"argv", create_argv}});

  r.restore_json = created.restore_json;
  const CallOutcome destroyed = executor.destroy(r, {});
  REQUIRE_MESSAGE(destroyed.ok(), destroyed.message);
  CHECK_FALSE(fs::exists(marker));
  CHECK(logged_argvs() == Argvs{create_argv, destroy_argv});

  SUBCASE("destroy is idempotent") {
    CHECK(executor.destroy(r, {}).ok());
    CHECK_FALSE(fs::exists(marker));
  }
  check_nothing_left();
}

TEST_CASE("shell metacharacters in a flag value are one argv element, never run") {
  TempDir dir("blade-external");
  const std::string marker = (dir / "marker").string();
  const fs::path pwned = dir / "pwned";
  const bool tmp_pwned_before = fs::exists("/tmp/pwned");
  const std::string note = "; touch /tmp/pwned; touch " + pwned.string() + " $(touch " +
                           pwned.string() + "2) `touch " + pwned.string() + "3` | id > " +
                           pwned.string() + "4 && echo '\"' \\n * \xff\xfe not UTF-8";
  ExternalExecutor executor = executor_for("touch");
  clear_log();
  const CallOutcome created =
      executor.create(request("touch", {{"path", marker}, {"note", note}}), {});
  REQUIRE_MESSAGE(created.ok(), created.message);
  const auto argvs = logged_argvs();
  REQUIRE(argvs.size() == 1);
  REQUIRE(argvs[0].size() == 7);
  CHECK(argvs[0][5] == "--note=" + note);
  for (const char *suffix : {"", "2", "3", "4"})
    CHECK_FALSE(fs::exists(pwned.string() + suffix));
  if (!tmp_pwned_before) CHECK_FALSE(fs::exists("/tmp/pwned"));
  CHECK(parse(created.restore_json)["argv"].size() == 7);  // stored despite the raw bytes

  PluginRequest r = request("touch", {{"path", marker}, {"note", note}});
  r.restore_json = created.restore_json;
  CHECK(executor.destroy(r, {}).ok());
  CHECK_FALSE(fs::exists(marker));
  check_nothing_left();
}

TEST_CASE("a hang action runs in its process until destroy kills it") {
  TempDir dir("blade-external");
  const std::string marker = (dir / "marker").string();
  ExternalExecutor executor = executor_for("hang");
  PluginRequest r = request("hang", {{"path", marker}});
  clear_log();

  const auto started = Clock::now();
  const CallOutcome created = executor.create(r, {});
  REQUIRE_MESSAGE(created.ok(), created.message);
  CHECK(Clock::now() - started < 2s);  // started, not awaited
  const json restore = parse(created.restore_json);
  REQUIRE(restore.contains("pid"));
  const auto pid = restore["pid"].get<pid_t>();
  CHECK(restore["argv"] == json(executor.argv("create", r)));
  CHECK(restore["start_time"].get<unsigned long long>() == start_time_of(pid));
  CHECK(parse(created.result_json) == json{{"pid", pid}});
  CHECK(process_exists(pid));
  CHECK(eventually([&] { return fs::exists(marker); }));
  // It keeps running after create returned, its keeper with it.
  std::this_thread::sleep_for(200ms);
  CHECK(process_exists(pid));
  CHECK(keeper_count() == 1);

  r.restore_json = created.restore_json;
  const CallOutcome destroyed = executor.destroy(r, {});
  REQUIRE_MESSAGE(destroyed.ok(), destroyed.message);
  CHECK(eventually([&] { return !process_exists(pid); }));
  CHECK_FALSE(fs::exists(marker));  // its SIGTERM handler removed it
  // Killing the process is the destroy: the binary's destroy is not run.
  CHECK(logged_argvs().size() == 1);

  const CallOutcome again = executor.destroy(r, {});
  CHECK_MESSAGE(again.ok(), again.message);
  check_nothing_left();
}

TEST_CASE("a hang destroy never signals a pid that is not the recorded process") {
  ExternalExecutor executor = executor_for("hang");
  const auto own_start = start_time_of(::getpid());
  REQUIRE(own_start != 0);

  SUBCASE("a live pid with another start time: reused, left alone") {
    PluginRequest r = request("hang", {{"path", "/nonexistent/marker"}});
    r.restore_json =
        json{{"argv", json::array()}, {"pid", ::getpid()}, {"start_time", own_start + 12345}}
            .dump();
    const CallOutcome destroyed = executor.destroy(r, {});
    CHECK_MESSAGE(destroyed.ok(), destroyed.message);
  }
  SUBCASE("a pid that is gone") {
    const pid_t gone = ::fork();
    REQUIRE(gone >= 0);
    if (gone == 0) ::_exit(0);
    int status = 0;
    ::waitpid(gone, &status, 0);
    PluginRequest r = request("hang", {{"path", "/nonexistent/marker"}});
    r.restore_json = json{{"argv", json::array()}, {"pid", gone}, {"start_time", 1}}.dump();
    CHECK(executor.destroy(r, {}).ok());
  }
  // Still here: nothing was sent to this process.
  check_nothing_left();
}

TEST_CASE("a hang action that exits at once is read like any other answer") {
  ExternalExecutor executor = executor_for("hang");
  // Without --path the stand-in answers ParameterLess and exits.
  const CallOutcome created = executor.create(request("hang"), {});
  CHECK(created.status == BLADE_STATUS_INVALID_ARGUMENT);
  CHECK(created.message == "45000: ParameterLess: path");
  CHECK(created.restore_json.empty());
  check_nothing_left();
}

TEST_CASE("a hang destroy without a process of record runs the binary's destroy") {
  TempDir dir("blade-external");
  const std::string marker = (dir / "marker").string();
  std::ofstream(marker) << kUid;
  ExternalExecutor executor = executor_for("hang");
  PluginRequest r = request("hang", {{"path", marker}});
  r.restore_json = json{{"argv", json::array()}}.dump();
  clear_log();
  const CallOutcome destroyed = executor.destroy(r, {});
  CHECK_MESSAGE(destroyed.ok(), destroyed.message);
  CHECK_FALSE(fs::exists(marker));
  CHECK(logged_argvs() == Argvs{executor.argv("destroy", r)});
  check_nothing_left();
}

TEST_CASE("output that is not a Response is 60000, INTERNAL") {
  const CallOutcome created = executor_for("badjson").create(request("badjson"), {});
  CHECK(created.status == BLADE_STATUS_INTERNAL);
  CHECK(created.message.find("60000") != std::string::npos);
  CHECK(created.message.find("this is not json") != std::string::npos);
  CHECK(created.restore_json.empty());
  check_nothing_left();
}

TEST_CASE("a non-zero exit is 63063 with the exit code and stderr") {
  const CallOutcome created = executor_for("fail").create(request("fail"), {});
  CHECK(created.status == BLADE_STATUS_FAILED_PRECONDITION);
  CHECK(created.message ==
        "63063: command exec failed: chaos_standin exited with code 3: standin: failing on "
        "purpose | second line of the reason");
  check_nothing_left();
}

TEST_CASE("a failure Response maps its code") {
  const CallOutcome created = executor_for("error").create(request("error"), {});
  CHECK(created.status == BLADE_STATUS_INVALID_ARGUMENT);
  CHECK(created.message == "47000: ParameterInvalid: bad value");
  check_nothing_left();
}

TEST_CASE("a binary past its deadline is killed with what it started: TIMEOUT") {
  REQUIRE(kSubreaper);
  TempDir dir("blade-external");
  const fs::path pid_file = dir / "pid";
  ExternalExecutor executor = executor_for("slow");
  const auto started = Clock::now();
  CallOptions options;
  options.deadline = started + 300ms;
  const CallOutcome created =
      executor.create(request("slow", {{"path", pid_file}, {"spawn", "true"}}), options);
  const auto took = Clock::now() - started;
  CHECK(created.status == BLADE_STATUS_TIMEOUT);
  CHECK(created.message.find("timed out after 300 ms") != std::string::npos);
  CHECK(took >= 300ms);
  CHECK(took < 1s);
  REQUIRE(fs::exists(pid_file));
  const pid_t pid = std::stoi(read_text(pid_file));
  CHECK_FALSE(process_exists(pid));  // killed and reaped before create returned
  // Its own child was in its process group: killed too, then adopted here.
  REQUIRE(fs::exists(pid_file.string() + ".child"));
  const auto grandchild = reaped(std::stoi(read_text(pid_file.string() + ".child")));
  REQUIRE(grandchild.has_value());
  CHECK(WIFSIGNALED(*grandchild));
  CHECK(WTERMSIG(*grandchild) == SIGKILL);
  check_nothing_left();
}

TEST_CASE("a cancelled call kills its binary: CANCELLED") {
  ExternalExecutor executor = executor_for("slow");
  std::atomic<bool> cancel{false};
  CallOptions options;
  options.cancel = &cancel;
  const auto started = Clock::now();
  std::thread canceller([&] {
    std::this_thread::sleep_for(200ms);
    cancel = true;
  });
  const CallOutcome created = executor.create(request("slow"), options);
  canceller.join();
  CHECK(created.status == BLADE_STATUS_CANCELLED);
  CHECK(Clock::now() - started < 1s);
  check_nothing_left();
}

TEST_CASE("a binary gets the daemon's environment without the daemon's own settings") {
  REQUIRE(kTokenSet);
  const CallOutcome answer = executor_for("env").create(request("env"), {});
  REQUIRE_MESSAGE(answer.ok(), answer.message);
  const json names = parse(answer.result_json);
  const auto has = [&](const std::string &name) {
    return std::find(names.begin(), names.end(), json(name)) != names.end();
  };
  CHECK(has("CHAOS_STANDIN_LOG"));
  CHECK(has("PATH") == (::getenv("PATH") != nullptr));
  CHECK_FALSE(has("BLADE_API_TOKEN"));
  check_nothing_left();
}

TEST_CASE("a missing binary is NOT_SUPPORTED, naming it") {
  ExternalExecutor executor(settings(), "chaos_missing", false);
  const CallOutcome created = executor.create(request("touch"), {});
  CHECK(created.status == BLADE_STATUS_NOT_SUPPORTED);
  CHECK(created.message.find((kStandinDir / "chaos_missing").string()) != std::string::npos);
  CHECK_THROWS_AS(ExternalExecutor(settings(), "../bin/sh", false), blade::Error);
  check_nothing_left();
}

TEST_CASE("dry run returns the plan and runs nothing") {
  TempDir dir("blade-external");
  const std::string marker = (dir / "marker").string();
  ExternalExecutor executor = executor_for("touch");
  const PluginRequest r = request("touch", {{"path", marker}});
  clear_log();
  const CallOutcome plan = executor.dry_run(r, {});
  REQUIRE(plan.ok());
  CHECK(parse(plan.plan_json) ==
        json{{"executor", "external:chaos_standin"}, {"argv", executor.argv("create", r)}});
  CHECK_FALSE(fs::exists(marker));
  CHECK(logged_argvs().empty());
  check_nothing_left();
}

TEST_CASE("the catalog takes well-named spec files, skips broken ones, first wins") {
  TempDir dir("blade-external-yaml");
  fs::copy_file(kSpecFile, dir / kSpecFile.filename());
  fs::copy_file(kSpecFile, dir / "standin.yaml");  // valid, but not named by the convention
  fs::copy_file(kSpecFile, dir / "chaosblade-zdup-spec-2.0.0.yaml");  // serves the same
  const fs::path broken = dir / "chaosblade-broken-spec-1.0.0.yaml";
  std::ofstream(broken) << "version: v1\nkind: plugin\nitems: [ {target: ";

  std::mutex mutex;
  std::vector<std::string> lines;
  blade::log::set_sink([&](std::string_view line) {
    std::lock_guard lock(mutex);
    lines.emplace_back(line);
  });
  const ExternalCatalog catalog = ExternalCatalog::from_dir(dir.path());
  blade::log::set_sink({});
  const auto logged = [&](const std::string &level, const std::string &text) {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string &l) {
      return l.find(level) != std::string::npos && l.find(text) != std::string::npos;
    });
  };

  CHECK(catalog.size() == 2);
  const auto touch = catalog.resolve("host", "marker", "t");
  REQUIRE(touch.has_value());
  CHECK(touch->action->name == "touch");
  CHECK(touch->target->target == "marker");
  CHECK(touch->program == "chaos_standin");  // the first file, by name
  const auto hang = catalog.resolve("host", "marker", "hang");
  REQUIRE(hang.has_value());
  CHECK(hang->action->process_hang);
  CHECK_FALSE(catalog.resolve("container", "marker", "touch"));
  CHECK_FALSE(catalog.resolve("host", "marker", "nope"));
  CHECK_FALSE(catalog.resolve("host", "cpu", "touch"));

  CHECK(logged("warn", "chaosblade-broken-spec-1.0.0.yaml"));
  CHECK(logged("warn", "chaosblade-zdup-spec-2.0.0.yaml"));
  CHECK(logged("info", "standin.yaml"));

  ExternalCatalog direct;
  CHECK_THROWS_AS(direct.add({broken, "chaos_broken"}), blade::Error);
  try {
    direct.add({broken, "chaos_broken"});
  } catch (const blade::Error &e) {
    CHECK(e.code() == blade::ErrorCode::InvalidArgument);
    CHECK(std::string(e.what()).find(broken.string()) != std::string::npos);
  }
  CHECK(direct.size() == 0);
  CHECK_THROWS_AS(ExternalCatalog::from_dir(dir / "missing"), blade::Error);
}

// The private helper under the executor, on its own.
TEST_CASE("a child gets only stdio, default signals, a group of its own; output is capped") {
  using blade::detail::ChildProcess;
  using blade::detail::WaitEnd;

  SUBCASE("no descriptor of the daemon leaks into the child") {
    // Deliberately not close-on-exec: only the child's own cleanup stops it.
    const int leaky = ::open("/dev/null", O_RDONLY);
    REQUIRE(leaky >= 0);
    {
      ChildProcess ls({"/bin/ls", "/proc/self/fd"});
      REQUIRE(ls.wait(Clock::now() + 5s) == WaitEnd::Exited);
      // 3 is the directory ls itself opened to list.
      CHECK(ls.output().out == "0\n1\n2\n3\n");
      CHECK(ls.wait_status() == 0);
    }
    ::close(leaky);
  }
  SUBCASE("ignored and blocked signals are reset; own process group; start time") {
    struct sigaction ignore {};
    struct sigaction previous {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGTERM, &ignore, &previous);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    ::pthread_sigmask(SIG_BLOCK, &block, &old);
    ChildProcess sleeper({"/bin/sleep", "30"});
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ::sigaction(SIGTERM, &previous, nullptr);

    // Read the child's state only once it runs sleep: between fork and exec
    // it is still resetting what it inherited.
    const std::string proc = "/proc/" + std::to_string(sleeper.pid());
    const auto exec_deadline = Clock::now() + 5s;
    while (read_text(proc + "/cmdline").rfind("/bin/sleep", 0) != 0 && Clock::now() < exec_deadline)
      std::this_thread::sleep_for(1ms);
    const std::string status = read_text(proc + "/status");
    CHECK(status.find("SigBlk:\t0000000000000000") != std::string::npos);
    // SIGTERM, ignored by the parent above, is back to its default. Only that
    // bit is checked: a runner started with signal 32 ignored passes that on,
    // and glibc refuses to touch 32 and 33 (its own), so the child keeps it.
    const auto ign_at = status.find("SigIgn:\t");
    REQUIRE(ign_at != std::string::npos);
    const std::string ign_hex = status.substr(ign_at + 8, 16);
    INFO("child SigIgn: " << ign_hex);
    const unsigned long long ignored = std::stoull(ign_hex, nullptr, 16);
    CHECK((ignored & (1ULL << (SIGTERM - 1))) == 0);
    if (ignored != 0) MESSAGE("child still ignores signal mask " << ign_hex);
    CHECK(::getpgid(sleeper.pid()) == sleeper.pid());
    CHECK(sleeper.start_time() == start_time_of(sleeper.pid()));
    CHECK(sleeper.wait(Clock::now() + 50ms) == WaitEnd::DeadlineExpired);
    const pid_t pid = sleeper.pid();
    sleeper.kill_and_reap();
    CHECK(sleeper.wait_status().has_value());
    CHECK_FALSE(process_exists(pid));
  }
  SUBCASE("each stream keeps 1 MiB; the child still runs to its end") {
    ChildProcess head({"/usr/bin/head", "-c", "3000000", "/dev/zero"});
    REQUIRE(head.wait(Clock::now() + 5s) == WaitEnd::Exited);
    CHECK(head.wait_status() == 0);
    const auto output = head.output();
    CHECK(output.out.size() == ChildProcess::kOutputCap);
    CHECK(output.out_truncated);
    CHECK_FALSE(output.err_truncated);
  }
  SUBCASE("the destructor kills and reaps a child still running") {
    pid_t pid = 0;
    {
      ChildProcess sleeper({"/bin/sleep", "30"});
      pid = sleeper.pid();
      CHECK(process_exists(pid));
    }
    CHECK_FALSE(process_exists(pid));
  }
  SUBCASE("a binary that cannot be run throws with its errno") {
    try {
      ChildProcess missing({"/nonexistent/chaos_x"});
      FAIL("started a missing binary");
    } catch (const std::system_error &e) {
      CHECK(e.code().value() == ENOENT);
    }
  }
  check_nothing_left();
}

TEST_CASE("a hang child outlives the thread that created it, and dies with the daemon") {
  TempDir dir("blade-external");
  const std::string marker = (dir / "marker").string();

  SUBCASE("the creating thread ends; the fault stays until destroy") {
    ExternalExecutor executor = executor_for("hang");
    PluginRequest r = request("hang", {{"path", marker}});
    CallOutcome created;
    // PR_SET_PDEATHSIG follows the forking *thread*: a request thread that
    // ends must not take the fault with it.
    std::thread([&] { created = executor.create(r, {}); }).join();
    REQUIRE_MESSAGE(created.ok(), created.message);
    const auto pid = parse(created.restore_json)["pid"].get<pid_t>();
    std::this_thread::sleep_for(300ms);
    CHECK(process_exists(pid));
    CHECK(fs::exists(marker));
    r.restore_json = created.restore_json;
    CHECK(executor.destroy(r, {}).ok());
    CHECK(eventually([&] { return !process_exists(pid); }));
    CHECK_FALSE(fs::exists(marker));
  }
  SUBCASE("the daemon is killed with SIGKILL; its hang child goes too") {
    std::array<int, 2> report{};
    REQUIRE(::pipe(report.data()) == 0);
    const pid_t daemon = ::fork();
    REQUIRE(daemon >= 0);
    if (daemon == 0) {
      // A stand-in daemon: starts a hang fault, says its pid, waits to die.
      ::close(report[0]);
      ExternalExecutor executor = executor_for("hang");
      const CallOutcome created = executor.create(request("hang", {{"path", marker}}), {});
      const pid_t pid = created.ok() ? parse(created.restore_json)["pid"].get<pid_t>() : -1;
      if (::write(report[1], &pid, sizeof pid) < 0) ::_exit(1);
      for (;;)
        ::pause();
    }
    ::close(report[1]);
    pid_t pid = -1;
    const bool got = ::read(report[0], &pid, sizeof pid) == sizeof pid;
    ::close(report[0]);
    REQUIRE(got);
    REQUIRE(pid > 0);
    CHECK(process_exists(pid));
    ::kill(daemon, SIGKILL);
    int status = 0;
    ::waitpid(daemon, &status, 0);
    // PR_SET_PDEATHSIG killed it; adopted by this subreaper, reaped here.
    REQUIRE(kSubreaper);
    const auto status_of_fault = reaped(pid);
    REQUIRE(status_of_fault.has_value());
    CHECK(WIFSIGNALED(*status_of_fault));
    CHECK(WTERMSIG(*status_of_fault) == SIGKILL);
    // SIGKILL gives the stand-in no chance to clean up; the test does.
    fs::remove(marker);
  }
  check_nothing_left();
}
