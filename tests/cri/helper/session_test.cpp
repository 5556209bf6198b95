// HelperSession against a helper that misbehaves on purpose
// (fake_helper.cpp): one that dies without an answer, breaks the protocol
// or will not go. The session answers each with a status that says what
// happened, and leaves no process behind.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../../../plugins/cri/src/helper_session.hpp"
#include "test_call.hpp"

using namespace blade;
using namespace blade::cri;
using blade::test::cri::TestCall;

namespace {

struct Logged {
  std::mutex mu;
  std::vector<std::string> lines;
  HelperHooks hooks() {
    HelperHooks h;
    h.log = [this](blade_log_level, const std::string &m) {
      std::lock_guard lock(mu);
      lines.push_back(m);
    };
    return h;
  }
  bool any_with(const std::string &text) {
    std::lock_guard lock(mu);
    for (const auto &l : lines)
      if (l.find(text) != std::string::npos) return true;
    return false;
  }
};

// The fake reads only the uid: it names what it does.
HelperRequest acting(const std::string &mode) {
  HelperRequest r;
  r.op = "create";
  r.uid = mode;
  r.target = "cpu";
  r.action = "fullload";
  r.enter.pid = ::getpid();
  r.state_dir = "/nonexistent";
  return r;
}

// Starts the fake in `mode` and serves it to its done (or its end).
struct FakeRun {
  Logged logged;
  std::unique_ptr<HelperSession> session;
  HelperDone done;
  explicit FakeRun(const std::string &mode) {
    session = HelperSession::start(BLADE_CRI_FAKE_HELPER_PATH, acting(mode), logged.hooks());
    TestCall tc;
    done = session->wait_done(tc.call());
  }
};

bool gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

}  // namespace

TEST_CASE("a helper that exits without an answer: INTERNAL with its status and its stderr logged") {
  FakeRun run("exit3");
  CHECK(run.done.status == BLADE_STATUS_INTERNAL);
  CHECK_MESSAGE(run.done.error.find("exited with status 3 before it answered") != std::string::npos,
                run.done.error);
  CHECK(run.logged.any_with("oops from the fake helper"));
  CHECK_FALSE(run.session->alive());
}

TEST_CASE("a helper killed by a signal: INTERNAL naming the signal") {
  FakeRun run("sigkill");
  CHECK(run.done.status == BLADE_STATUS_INTERNAL);
  CHECK_MESSAGE(run.done.error.find("killed by signal 9 (SIGKILL)") != std::string::npos,
                run.done.error);
}

TEST_CASE("a helper that breaks the protocol is killed") {
  FakeRun run("garbage");
  CHECK(run.done.status == BLADE_STATUS_INTERNAL);
  CHECK_MESSAGE(run.done.error.find("not a JSON object") != std::string::npos, run.done.error);
  CHECK_FALSE(run.session->alive());
}

TEST_CASE("a helper that will not go when the session ends is killed after 2 s") {
  FakeRun run("hang");
  REQUIRE(run.done.status == BLADE_STATUS_OK);
  const pid_t pid = run.session->pid();
  const auto t0 = std::chrono::steady_clock::now();
  run.session.reset();
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("the session's end took " << waited << " s with a helper that ignores it");
  CHECK(waited >= 1.9);
  CHECK(waited < 4.0);
  CHECK(gone(pid));
}
