// strace delay|error against a real bladed: a fixture process (syscall_loop)
// makes one syscall in a loop and logs each call's latency and errno; the
// tests read what the tracer did to each call, and check that after destroy,
// a SIGKILL of the tracer or of bladed, the fixture runs on untraced.
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "../support/eventually.hpp"
#include "../support/process_state.hpp"
#include "os_test_support.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;
using namespace blade::test;
using namespace blade::test::os;

namespace {

struct Call {
  long seq = 0;
  long long latency_us = 0;
  long ret = 0;
  int err = 0;
};

// The fixture, run from a copy in a temp dir: its command line must not hold
// "blade" (a build tree may), or the guard refuses it.
class SyscallLoop {
 public:
  // With thread_after_ms > 0 the calls come from a thread started that
  // late, and the constructor does not wait for them.
  // With fork, from a child process forked then.
  SyscallLoop(const std::string &syscall, int pause_ms, int thread_after_ms = 0,
              bool fork = false) {
    const fs::path exe = dir_ / "syscall-loop";
    fs::copy_file(BLADE_SYSCALL_LOOP_PATH, exe);
    fs::permissions(exe, fs::perms(0755));
    log_ = dir_ / "calls.log";
    std::vector<std::string> argv = {exe.string(), log_.string(), syscall,
                                     std::to_string(pause_ms)};
    if (thread_after_ms > 0) argv.push_back(std::to_string(thread_after_ms));
    if (fork) argv.push_back("fork");
    child_ = std::make_unique<ChildProcess>(argv);
    if (thread_after_ms > 0)
      REQUIRE(eventually([&] { return process_state(pid()) == 'S'; }));
    else
      REQUIRE(eventually([&] { return calls().size() >= 3; }));
  }

  pid_t pid() const { return child_->pid(); }

  std::vector<Call> calls() const {
    std::vector<Call> out;
    std::ifstream in(log_);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      Call c;
      if (fields >> c.seq >> c.latency_us >> c.ret >> c.err) out.push_back(c);
    }
    return out;
  }

  long last_seq() const {
    auto all = calls();
    return all.empty() ? 0 : all.back().seq;
  }

  // The calls after `after`, once there are at least `n` of them.
  std::vector<Call> calls_after(long after, std::size_t n,
                                std::chrono::milliseconds timeout = 20s) const {
    std::vector<Call> out;
    eventually(
        [&] {
          out.clear();
          for (const auto &c : calls())
            if (c.seq > after) out.push_back(c);
          return out.size() >= n;
        },
        timeout);
    return out;
  }

  bool alive() const {
    const char s = process_state(pid());
    return s != 0 && s != 'Z';
  }

 private:
  TempDir dir_{"strace-test"};
  fs::path log_;
  std::unique_ptr<ChildProcess> child_;
};

long long median_us(std::vector<Call> calls) {
  REQUIRE_FALSE(calls.empty());
  std::sort(calls.begin(), calls.end(),
            [](const Call &a, const Call &b) { return a.latency_us < b.latency_us; });
  return calls[calls.size() / 2].latency_us;
}

bool untraced(pid_t pid) {
  return eventually([&] { return tracer_pid(pid) == 0; }, 5s);
}

json flags_for(const SyscallLoop &loop, json more) {
  more["pid"] = std::to_string(loop.pid());
  return more;
}

// Skip calls in flight while the tracer attached or detached: the first
// `settle` after `after`.
std::vector<Call> settled(const SyscallLoop &loop, long after, std::size_t n,
                          std::size_t settle = 2) {
  auto calls = loop.calls_after(after, n + settle);
  REQUIRE(calls.size() >= n + settle);
  return {calls.begin() + static_cast<long>(settle), calls.end()};
}

}  // namespace

TEST_CASE("strace delay holds each getppid for the time, at enter and at exit; destroy undoes it") {
  BladedProcess d(os_options());
  auto c = d.client();
  SyscallLoop loop("getppid", 5);
  const long long base = median_us(loop.calls_after(0, 10));
  MESSAGE("getppid untraced: median " << base << " us");
  REQUIRE(base < 5000);

  for (const std::string loc : {"enter", "exit"}) {
    CAPTURE(loc);
    auto created = create(c, "strace", "delay",
                          flags_for(loop, {{"syscall-name", "getppid"},
                                           {"time", "60ms"},
                                           {"delay-loc", loc}}));
    REQUIRE_MESSAGE(created.status == 201, created.body.dump());
    const json result = created.body["data"]["result"];
    CHECK(result["delay_us"] == 60000.0);
    CHECK(result["delay_loc"] == loc);
    const pid_t tracer = result["tracer_pid"];
    CHECK(tracer_pid(loop.pid()) == tracer);
    const long since = loop.last_seq();
    const auto delayed = settled(loop, since, 10);
    const long long median = median_us(delayed);
    MESSAGE("getppid delayed 60ms at " << loc << ": median " << median << " us");
    CHECK(median >= 60000);
    CHECK(median <= 60000 + 25000);
    for (const auto &call : delayed)
      CHECK(call.ret == ::getpid());  // the call itself still ran: its parent is the test

    check_destroyed(c, created.uid());
    CHECK(untraced(loop.pid()));
    CHECK(process_state(tracer) == 0);  // the tracer is gone (reaped)
    const long after = loop.last_seq();
    CHECK(median_us(settled(loop, after, 10)) < 5000);
    CHECK(loop.alive());
    check_destroyed(c, created.uid());  // twice: still fine
  }
}

TEST_CASE("strace error makes openat fail with the errno (name or number) until destroyed") {
  BladedProcess d(os_options());
  auto c = d.client();
  SyscallLoop loop("openat", 5);
  for (const auto &c0 : loop.calls()) REQUIRE(c0.ret >= 0);

  for (const auto &[value, err] : {std::pair<std::string, int>{"ENOENT", ENOENT}, {"13", EACCES}}) {
    CAPTURE(value);
    auto created = create(c, "strace", "error",
                          flags_for(loop, {{"syscall-name", "openat"}, {"return-value", value}}));
    REQUIRE_MESSAGE(created.status == 201, created.body.dump());
    CHECK(created.body["data"]["result"]["return_value"] == -err);
    const long since = loop.last_seq();
    const auto failed = settled(loop, since, 10);
    for (const auto &call : failed) {
      CHECK(call.ret == -1);
      CHECK(call.err == err);
    }
    check_destroyed(c, created.uid());
    CHECK(untraced(loop.pid()));
    for (const auto &call : settled(loop, loop.last_seq(), 10)) {
      CHECK(call.ret >= 0);
      CHECK(call.err == 0);
    }
  }
}

TEST_CASE("strace takes a pid list: every process of it is traced; a dry run traces none") {
  BladedProcess d(os_options());
  auto c = d.client();
  SyscallLoop one("openat", 5);
  SyscallLoop two("openat", 5);
  const json flags = {{"pid", std::to_string(one.pid()) + "," + std::to_string(two.pid())},
                      {"syscall-name", "openat"},
                      {"return-value", "ENOENT"}};
  auto plan = create(c, "strace", "error", flags, true);
  INFO(plan.body.dump());
  CHECK(plan.status == 200);
  CHECK(plan.body.dump().find(std::to_string(two.pid())) != std::string::npos);
  CHECK(tracer_pid(one.pid()) == 0);
  CHECK(tracer_pid(two.pid()) == 0);

  auto created = create(c, "strace", "error", flags);
  REQUIRE_MESSAGE(created.status == 201, created.body.dump());
  CHECK(created.body["data"]["result"]["pids"] == json::array({one.pid(), two.pid()}));
  for (const SyscallLoop *loop : {&one, &two}) {
    for (const auto &call : settled(*loop, loop->last_seq(), 5)) CHECK(call.err == ENOENT);
  }
  check_destroyed(c, created.uid());
  CHECK(untraced(one.pid()));
  CHECK(untraced(two.pid()));
}

TEST_CASE("strace error follows a thread started after the attach, and survives SIGSTOP/SIGCONT") {
  BladedProcess d(os_options());
  auto c = d.client();
  SyscallLoop loop("openat", 5, 3000);
  REQUIRE(thread_count(loop.pid()) == 1);
  auto created = create(c, "strace", "error",
                        flags_for(loop, {{"syscall-name", "openat"}, {"return-value", "ENOENT"}}));
  REQUIRE_MESSAGE(created.status == 201, created.body.dump());
  CHECK(loop.last_seq() == 0);  // attached before the thread made any call
  const auto failed = loop.calls_after(0, 10);
  REQUIRE(failed.size() >= 10);
  CHECK(thread_count(loop.pid()) == 2);
  for (const auto &call : failed) {
    CHECK(call.ret == -1);
    CHECK(call.err == ENOENT);
  }

  // Stopped and continued (a job-control stop, or a `process stop` fault)
  // while traced: it stops, and goes on failing after SIGCONT.
  REQUIRE(::kill(loop.pid(), SIGSTOP) == 0);
  REQUIRE(eventually([&] { return process_state(loop.pid()) == 't' || process_state(loop.pid()) == 'T'; }));
  const long stopped_at = loop.last_seq();
  std::this_thread::sleep_for(200ms);
  CHECK(loop.last_seq() <= stopped_at + 1);
  REQUIRE(::kill(loop.pid(), SIGCONT) == 0);
  for (const auto &call : settled(loop, stopped_at + 1, 10)) {
    CHECK(call.ret == -1);
    CHECK(call.err == ENOENT);
  }
  check_destroyed(c, created.uid());
  CHECK(untraced(loop.pid()));
  for (const auto &call : settled(loop, loop.last_seq(), 10)) CHECK(call.ret >= 0);
}

TEST_CASE("strace error follows a child process forked after the attach, as strace -f") {
  BladedProcess d(os_options());
  auto c = d.client();
  SyscallLoop loop("openat", 5, 3000, true);
  auto created = create(c, "strace", "error",
                        flags_for(loop, {{"syscall-name", "openat"}, {"return-value", "EROFS"}}));
  REQUIRE_MESSAGE(created.status == 201, created.body.dump());
  CHECK(loop.last_seq() == 0);  // attached before the child was forked
  for (const auto &call : loop.calls_after(0, 10)) {
    CHECK(call.ret == -1);
    CHECK(call.err == EROFS);
  }
  check_destroyed(c, created.uid());
  CHECK(untraced(loop.pid()));
  for (const auto &call : settled(loop, loop.last_seq(), 10)) CHECK(call.ret >= 0);
}

TEST_CASE("strace error: first, end and step choose the calls, counted from the attach") {
  BladedProcess d(os_options());
  auto c = d.client();
  SyscallLoop loop("openat", 5);
  // Creates an openat error with `when` (first/end/step), lets `calls`
  // calls pass, and gives the seqs of those that failed; destroys it.
  const auto failed_with = [&](const json &when, std::size_t calls, json *result = nullptr) {
    const long since = loop.last_seq();
    json flags = flags_for(loop, {{"syscall-name", "openat"}, {"return-value", "EIO"}});
    flags.update(when);
    auto created = create(c, "strace", "error", flags);
    REQUIRE_MESSAGE(created.status == 201, created.body.dump());
    if (result) *result = created.body["data"]["result"];
    std::vector<long> out;
    for (const auto &call : loop.calls_after(since, calls)) {
      if (call.ret >= 0) continue;
      CHECK(call.err == EIO);
      out.push_back(call.seq);
    }
    check_destroyed(c, created.uid());
    return out;
  };

  SUBCASE("first=3 end=9 step=3: the 3rd, 6th and 9th calls") {
    const auto failed = failed_with({{"first", "3"}, {"end", "9"}, {"step", "3"}}, 30);
    REQUIRE(failed.size() == 3);
    CHECK(failed[1] - failed[0] == 3);
    CHECK(failed[2] - failed[1] == 3);
  }
  SUBCASE("first=2 alone: that one call only") {
    CHECK(failed_with({{"first", "2"}}, 20).size() == 1);
  }
  SUBCASE("end without first counts from the first call, and says how it differs") {
    json result;
    const auto failed = failed_with({{"end", "4"}}, 20, &result);
    CHECK(result["notes"].dump().find("ChaosBlade") != std::string::npos);
    REQUIRE(failed.size() == 4);
    CHECK(failed[3] - failed[0] == 3);
  }
  CHECK(untraced(loop.pid()));
}

TEST_CASE("strace refuses bad flags, protected pids and a traced process, changing nothing") {
  BladedProcess d(os_options());
  auto c = d.client();
  SyscallLoop loop("getppid", 5);
  const auto refused = [&](const json &flags, const std::string &action, int status,
                           const std::string &field, const std::string &words) {
    auto a = create(c, "strace", action, flags);
    INFO(a.body.dump());
    CHECK(a.status == status);
    if (!field.empty()) CHECK(a.field() == field);
    CHECK(a.message().find(words) != std::string::npos);
    CHECK(tracer_pid(loop.pid()) == 0);
  };
  const json delay = {{"syscall-name", "getppid"}, {"time", "10ms"}, {"delay-loc", "enter"}};
  refused(flags_for(loop, {{"syscall-name", "nosuchcall"}, {"time", "1ms"}, {"delay-loc", "enter"}}),
          "delay", 400, "flags.syscall-name", "nosuchcall");
  refused(flags_for(loop, {{"syscall-name", "getppid"}, {"time", "10 parsecs"}, {"delay-loc", "exit"}}),
          "delay", 400, "flags.time", "parsecs");
  refused(flags_for(loop, {{"syscall-name", "getppid"}, {"return-value", "ENOTANERRNO"}}), "error",
          400, "flags.return-value", "ENOTANERRNO");
  refused(flags_for(loop, {{"syscall-name", "getppid"}, {"return-value", "EIO"}, {"first", "5"},
                           {"end", "2"}}),
          "error", 400, "flags.end", "before first");
  json own = delay;
  own["pid"] = std::to_string(d.process->pid());
  refused(own, "delay", 400, "flags.pid", "bladed itself");
  own["pid"] = "1";
  refused(own, "delay", 400, "flags.pid", "init");
  own["pid"] = std::to_string(::getpid());  // bladed's parent: this test
  refused(own, "delay", 400, "flags.pid", "parent of bladed");

  // Traced by someone else (here: this test): a 409 naming the tracer.
  REQUIRE(::ptrace(PTRACE_SEIZE, loop.pid(), nullptr, nullptr) == 0);
  REQUIRE(tracer_pid(loop.pid()) == ::getpid());
  {
    const std::string words = "already traced by pid " + std::to_string(::getpid());
    auto a = create(c, "strace", "delay", flags_for(loop, delay));
    INFO(a.body.dump());
    CHECK(a.status == 409);
    CHECK(a.message().find(words) != std::string::npos);
    auto plan = create(c, "strace", "delay", flags_for(loop, delay), true);
    INFO(plan.body.dump());
    CHECK(plan.status == 200);
    CHECK(plan.body.dump().find(words) != std::string::npos);
  }
  REQUIRE(::ptrace(PTRACE_INTERRUPT, loop.pid(), nullptr, nullptr) == 0);
  int status = 0;
  REQUIRE(::waitpid(loop.pid(), &status, __WALL) == loop.pid());
  REQUIRE(::ptrace(PTRACE_DETACH, loop.pid(), nullptr, nullptr) == 0);
  REQUIRE(untraced(loop.pid()));

  // Traced by another strace experiment: a 409 that says so.
  auto first = create(c, "strace", "delay", flags_for(loop, delay));
  REQUIRE_MESSAGE(first.status == 201, first.body.dump());
  {
    auto a = create(c, "strace", "error",
                    flags_for(loop, {{"syscall-name", "getppid"}, {"return-value", "EIO"}}));
    INFO(a.body.dump());
    CHECK(a.status == 409);
    CHECK(a.message().find("another strace experiment") != std::string::npos);
    // Nor is that tracer itself a target: bladed's own child (refused first
    // for the command line it shares with bladed).
    json tracer = delay;
    tracer["pid"] = std::to_string(first.body["data"]["result"]["tracer_pid"].get<int>());
    auto own_child = create(c, "strace", "delay", tracer);
    INFO(own_child.body.dump());
    CHECK(own_child.status == 400);
    CHECK(own_child.field() == "flags.pid");
  }
  check_destroyed(c, first.uid());
  CHECK(untraced(loop.pid()));
  CHECK(loop.alive());
}

TEST_CASE("a SIGKILLed tracer leaves the process running untraced; the experiment fails") {
  BladedProcess d(os_options());
  auto c = d.client();
  SyscallLoop loop("openat", 5);
  auto created = create(c, "strace", "error",
                        flags_for(loop, {{"syscall-name", "openat"}, {"return-value", "ENOENT"}}));
  REQUIRE_MESSAGE(created.status == 201, created.body.dump());
  const pid_t tracer = created.body["data"]["result"]["tracer_pid"];
  settled(loop, loop.last_seq(), 5);
  REQUIRE(::kill(tracer, SIGKILL) == 0);
  CHECK(untraced(loop.pid()));
  CHECK(loop.alive());
  // Every call after the kill runs normally again: none lost to -ENOSYS.
  for (const auto &call : settled(loop, loop.last_seq(), 10)) {
    CHECK(call.ret >= 0);
    CHECK(call.err == 0);
  }
  const auto x = wait_status(c, created.uid(), "failed");
  INFO(x.dump());
  CHECK(x["status"] == "failed");
  CHECK(x.dump().find("tracer") != std::string::npos);
}

TEST_CASE("a traced process that exits ends the experiment as failed, with the reason") {
  BladedProcess d(os_options());
  auto c = d.client();
  auto loop = std::make_unique<SyscallLoop>("getppid", 5);
  auto created = create(c, "strace", "delay",
                        flags_for(*loop, {{"syscall-name", "getppid"},
                                          {"time", "1ms"},
                                          {"delay-loc", "exit"}}));
  REQUIRE_MESSAGE(created.status == 201, created.body.dump());
  const pid_t tracer = created.body["data"]["result"]["tracer_pid"];
  loop.reset();  // SIGKILL and reaped
  const auto x = wait_status(c, created.uid(), "failed");
  INFO(x.dump());
  CHECK(x["status"] == "failed");
  CHECK(x.dump().find("every traced process exited") != std::string::npos);
  CHECK(eventually([&] { return process_state(tracer) == 0; }, 5s));
  CHECK(destroy(c, created.uid()).status == 200);  // nothing left to undo
}

TEST_CASE("a SIGKILLed bladed leaves the process running untraced; the restart records it destroyed") {
  SyscallLoop loop("getppid", 5);
  BladedProcess d(os_options());
  auto c = d.client();
  auto created = create(c, "strace", "delay",
                        flags_for(loop, {{"syscall-name", "getppid"},
                                         {"time", "200ms"},
                                         {"delay-loc", "enter"}}));
  REQUIRE_MESSAGE(created.status == 201, created.body.dump());
  const pid_t tracer = created.body["data"]["result"]["tracer_pid"];
  REQUIRE(median_us(settled(loop, loop.last_seq(), 3, 1)) >= 200000);

  d.crash();
  CHECK(eventually([&] { return process_state(tracer) == 0 || process_state(tracer) == 'Z'; }, 5s));
  CHECK(untraced(loop.pid()));
  CHECK(loop.alive());
  CHECK(median_us(settled(loop, loop.last_seq(), 10)) < 5000);

  d.restart();  // returns once recovery has run
  auto c2 = d.client();
  CHECK(wait_destroyed(c2, created.uid()) == "destroyed");
  CHECK(tracer_pid(loop.pid()) == 0);
  CHECK(loop.alive());
}

TEST_CASE("bladed killed right after the attach: the process runs on untraced, the restart destroys") {
  SyscallLoop loop("openat", 5);
  BladedProcess d(os_options({}));
  d.set_env({"BLADE_FAILPOINTS=os.strace.error.after_attach=kill"});
  d.crash();
  d.restart();  // now armed
  auto c = d.client();
  json body = {{"target", "strace"},
               {"action", "error"},
               {"flags", flags_for(loop, {{"syscall-name", "openat"}, {"return-value", "EIO"}})}};
  (void)post_json(c, "/v1/experiments", body);  // no answer: the daemon dies inside
  REQUIRE(d.process->exit_code(10s) == -SIGKILL);
  CHECK(untraced(loop.pid()));
  CHECK(loop.alive());
  for (const auto &call : settled(loop, loop.last_seq(), 10)) CHECK(call.ret >= 0);

  d.set_env({});
  d.restart();
  auto c2 = d.client();
  auto list = c2.Get("/v1/experiments", auth());
  REQUIRE(list);
  INFO(list->body);
  const auto all = json::parse(list->body)["data"]["items"];
  REQUIRE(all.is_array());
  REQUIRE(all.size() == 1);
  const std::string status = all[0].value("status", "");
  // The create never answered: failed or destroyed, and nothing left.
  CHECK((status == "destroyed" || status == "failed"));
  CHECK(tracer_pid(loop.pid()) == 0);
}
