// The plugin's side of blade-cri-helper (helper_session.hpp): spawned with
// posix_spawn and an argv (never a shell), the protocol on a socketpair that
// the helper has as fd 3, its stderr on a pipe whose lines reach the
// plugin's log, its life owned by the session.
#include "../helper_session.hpp"

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../../common/handles.hpp"
#include "../../../common/proc_reader.hpp"

namespace blade::cri {

using nlohmann::json;
using plugins::UniqueFd;

namespace {

// What a wait status says, for a message.
std::string describe_exit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char *abbrev = ::sigabbrev_np(WTERMSIG(status));
    return "was killed by signal " + std::to_string(WTERMSIG(status)) +
           (abbrev ? std::string(" (SIG") + abbrev + ")" : std::string());
  }
  return "ended with wait status " + std::to_string(status);
}

// A message's text field; `fallback` when it is absent or not a string.
std::string text_of(const json &m, const char *key, const char *fallback) {
  const auto it = m.find(key);
  return it != m.end() && it->is_string() ? it->get<std::string>() : std::string(fallback);
}

blade_log_level level_of(const std::string &name) {
  if (name == "debug") return BLADE_LOG_DEBUG;
  if (name == "warn") return BLADE_LOG_WARN;
  if (name == "error") return BLADE_LOG_ERROR;
  return BLADE_LOG_INFO;
}

}  // namespace

struct HelperSession::Impl {
  std::string op;
  HelperHooks hooks;
  pid_t pid = -1;
  std::uint64_t start = 0;
  UniqueFd sock;  // the plugin's end of the socketpair
  UniqueFd err;   // the read end of the helper's stderr
  LineBuffer in;
  LineBuffer err_lines{64 * 1024};

  mutable std::mutex mu;            // guards status (the watcher reaps too)
  mutable std::optional<int> status;  // wait status once reaped

  std::thread watcher;
  UniqueFd wake;  // eventfd: tells the watcher to stop
  bool watching = false;

  ~Impl() { stop_watching(); }

  void log(blade_log_level level, const std::string &message) const {
    if (hooks.log) hooks.log(level, message);
  }
  std::string who() const { return "blade-cri-helper (pid " + std::to_string(pid) + ")"; }

  // Reaps the helper if it has ended (or waits up to `wait_ms` for it);
  // its wait status once it has.
  std::optional<int> reap(int wait_ms) const {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    for (;;) {
      {
        std::lock_guard lock(mu);
        if (status) return status;
        int st = 0;
        pid_t r = ::waitpid(pid, &st, WNOHANG);
        if (r == pid) {
          status = st;
          return status;
        }
        if (r < 0 && errno == ECHILD) {
          // Reaped by someone else (a SIGCHLD handler of the host): gone.
          status = 0;
          return status;
        }
      }
      if (std::chrono::steady_clock::now() >= end) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  void kill_and_reap() const {
    if (!reap(0)) {
      ::kill(pid, SIGKILL);
      reap(5000);
    }
  }

  void drain_stderr() {
    try {
      while (auto line = err_lines.next())
        log(BLADE_LOG_WARN, who() + ": " + *line);
    } catch (const std::length_error &) {
      log(BLADE_LOG_WARN, who() + ": an overlong stderr line was dropped");
      err_lines = LineBuffer(64 * 1024);
    }
  }

  // One message that is not a done. save_restore, report and progress
  // belong to the call being served (`in_call`): they reach the hooks only
  // then, on the call's own thread, never from the watcher while the
  // plugin sets up or ends that call.
  void serve(const json &m, bool in_call) {
    const std::string type = text_of(m, "type", "");
    try {
      if (type == "log") {
        log(level_of(text_of(m, "level", "info")), text_of(m, "message", ""));
      } else if (type == "save_restore" && in_call) {
        json ack = {{"type", "ack"}, {"ok", true}};
        try {
          if (!m.contains("record")) throw std::runtime_error("the helper sent no record");
          if (hooks.save_restore) hooks.save_restore(m["record"].dump());
        } catch (const std::exception &e) {
          ack = {{"type", "ack"}, {"ok", false}, {"error", e.what()}};
        }
        send_all(sock.get(), ack.dump() + "\n");
      } else if (type == "report" && in_call) {
        if (hooks.report && m.contains("report")) hooks.report(m["report"].dump());
      } else if (type == "fault_ended") {
        if (hooks.fault_ended) hooks.fault_ended(text_of(m, "reason", "the fault ended"));
      } else if (type == "progress" && in_call) {
        const auto p = m.find("percent");
        const int percent = p != m.end() && p->is_number_integer() ? p->get<int>() : 0;
        if (hooks.progress) hooks.progress(percent, text_of(m, "note", ""));
      } else {
        log(BLADE_LOG_WARN, who() + " sent a message of unknown type '" + type + "'");
      }
    } catch (const std::exception &e) {
      // A hook that throws must not end the session (nor, on the watcher's
      // thread, the daemon).
      log(BLADE_LOG_WARN, who() + ": its " + type + " message was not taken: " + e.what());
    }
  }

  static HelperDone done_of(const json &m) {
    HelperDone d;
    const auto st = m.find("status");
    const int s = st != m.end() && st->is_number_integer() ? st->get<int>() : BLADE_STATUS_INTERNAL;
    // A status this side does not know is a bug of the other: INTERNAL.
    d.status = (s >= BLADE_STATUS_OK && s <= BLADE_STATUS_INTERNAL) ? static_cast<blade_status>(s)
                                                                     : BLADE_STATUS_INTERNAL;
    d.error = text_of(m, "error", "");
    auto dump = [&](const char *key) {
      auto it = m.find(key);
      return it == m.end() || it->is_null() ? std::string("{}") : it->dump();
    };
    d.result_json = dump("result");
    d.restore_json = dump("restore");
    d.plan_json = dump("plan");
    return d;
  }

  // The helper closed its end: what became of it.
  HelperDone died() {
    drain_stderr();
    std::optional<int> st = reap(2000);
    if (!st) {
      kill_and_reap();
      return {BLADE_STATUS_INTERNAL, who() + " closed its socket without an answer and was killed"};
    }
    return {BLADE_STATUS_INTERNAL, who() + " " + describe_exit(*st) + " before it answered"};
  }

  HelperDone wait_done(const sdk::Call &call) {
    for (;;) {
      if (call.cancelled()) {
        kill_and_reap();
        return {BLADE_STATUS_CANCELLED, "cancelled by the host; " + who() + " was killed"};
      }
      const std::int64_t left = call.remaining_ms();
      if (left <= 0) {
        kill_and_reap();
        return {BLADE_STATUS_TIMEOUT, "the call's deadline passed; " + who() + " was killed"};
      }
      Pumped got;
      try {
        got = pump(static_cast<int>(std::min<std::int64_t>(left, 100)), -1);
      } catch (const std::exception &e) {
        kill_and_reap();
        return {BLADE_STATUS_INTERNAL, who() + " broke the protocol (" + e.what() + "); killed"};
      }
      for (std::size_t i = 0; i < got.messages.size(); ++i) {
        if (text_of(got.messages[i], "type", "") != "done") {
          serve(got.messages[i], true);
          continue;
        }
        // What came in the same read after the done (a holding fault's
        // first log) is the watcher's kind of message: served, not lost.
        for (std::size_t j = i + 1; j < got.messages.size(); ++j)
          serve(got.messages[j], false);
        HelperDone d = done_of(got.messages[i]);
        if (op == "create" && d.status == BLADE_STATUS_OK) start_watching();
        return d;
      }
      if (!got.open) return died();
    }
  }

  struct Pumped {
    std::vector<json> messages;  // whole lines read, each a JSON object
    bool open = true;            // false: the helper closed its end
    bool woken = false;          // `wake_fd` fired
  };

  // Waits up to `timeout_ms` (-1: for ever) for the helper's socket, its
  // stderr (whose lines are logged here) and `wake_fd` (-1: none); what
  // came. Throws on a line that is overlong or not a JSON object.
  Pumped pump(int timeout_ms, int wake_fd) {
    Pumped out;
    pollfd fds[3] = {{sock.get(), POLLIN, 0}, {wake_fd, POLLIN, 0}, {err.get(), POLLIN, 0}};
    if (::poll(fds, 3, timeout_ms) < 0) {
      if (errno == EINTR) return out;
      throw std::runtime_error(std::string("poll: ") + strerror(errno));
    }
    if (fds[1].revents) out.woken = true;
    if (err && (fds[2].revents & (POLLIN | POLLHUP))) {
      if (!read_some(err.get(), err_lines)) err.reset();
      drain_stderr();
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      out.open = read_some(sock.get(), in);
      while (auto line = in.next()) {
        json m = json::parse(*line, nullptr, false);
        if (!m.is_object()) throw std::runtime_error("a line that is not a JSON object");
        out.messages.push_back(std::move(m));
      }
    }
    return out;
  }

  // After a create: the helper holds the fault; its logs and its death are
  // served here until destroy() or the session's end.
  void start_watching() {
    wake.reset(::eventfd(0, EFD_CLOEXEC));
    if (!wake) {
      log(BLADE_LOG_WARN, who() + ": no eventfd, so its logs wait until destroy");
      return;
    }
    watching = true;
    watcher = std::thread([this] { watch(); });
  }

  void stop_watching() {
    if (!watching) return;
    const std::uint64_t one = 1;
    if (::write(wake.get(), &one, sizeof one) != sizeof one) {
      // An eventfd write fails only on overflow, which one write cannot cause.
    }
    watcher.join();
    watching = false;
    wake.reset();
  }

  void watch() {
    for (;;) {
      Pumped got;
      std::string broken;
      try {
        got = pump(-1, wake.get());
      } catch (const std::exception &e) {
        broken = e.what();
      }
      if (got.woken) return;
      for (const json &m : got.messages)
        serve(m, false);
      std::string why;
      if (!broken.empty()) {
        kill_and_reap();
        why = who() + ", which held the fault, broke the protocol (" + broken + ") and was killed";
      } else if (!got.open) {
        drain_stderr();
        std::optional<int> st = reap(2000);
        if (!st) kill_and_reap();
        why = who() + ", which held the fault, " +
              (st ? describe_exit(*st) : std::string("hung up and was killed"));
      } else {
        continue;
      }
      log(BLADE_LOG_WARN, why);
      if (hooks.fault_ended) hooks.fault_ended(why);
      return;
    }
  }
};

std::unique_ptr<HelperSession> HelperSession::start(const std::string &helper_path,
                                                    const HelperRequest &req, HelperHooks hooks) {
  auto fail = [&](const std::string &what, int err) -> sdk::Error {
    return sdk::Error(BLADE_STATUS_INTERNAL, "cannot start " + helper_path + ": " + what + ": " +
                                                 strerror(err));
  };
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    throw fail("socketpair", errno);
  UniqueFd mine(pair[0]), theirs(pair[1]);
  // dup2 onto the same number would keep CLOEXEC: keep the child's end off 3.
  if (theirs.get() == 3) theirs.reset(::fcntl(3, F_DUPFD_CLOEXEC, 10));
  int errp[2];
  if (::pipe2(errp, O_CLOEXEC) != 0) throw fail("pipe", errno);
  UniqueFd err_read(errp[0]), err_write(errp[1]);
  if (err_write.get() <= 3) err_write.reset(::fcntl(err_write.get(), F_DUPFD_CLOEXEC, 10));
  if (!theirs || !err_write) throw fail("fcntl", errno);

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawnattr_init(&attr);
  ::posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  ::posix_spawn_file_actions_adddup2(&fa, err_write.get(), 2);
  ::posix_spawn_file_actions_adddup2(&fa, theirs.get(), 3);
  // Nothing else of the daemon's (its database, listening sockets) reaches
  // a process that enters a container.
  ::posix_spawn_file_actions_addclosefrom_np(&fa, 4);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setsigdefault(&attr, &all);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char *> argv = {const_cast<char *>(helper_path.c_str()), nullptr};
  // A minimal environment: nothing of the daemon's reaches the container.
  static const char *const kEnv[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                     "LC_ALL=C", nullptr};
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, helper_path.c_str(), &fa, &attr, argv.data(),
                               const_cast<char *const *>(kEnv));
  ::posix_spawn_file_actions_destroy(&fa);
  ::posix_spawnattr_destroy(&attr);
  if (rc != 0) throw fail("posix_spawn", rc);
  theirs.reset();
  err_write.reset();

  std::unique_ptr<HelperSession> s(new HelperSession());
  s->impl_ = std::make_unique<Impl>();
  Impl &im = *s->impl_;
  im.op = req.op;
  im.hooks = std::move(hooks);
  im.pid = pid;
  im.start = plugins::proc::start_time_of(pid).value_or(0);
  im.sock = std::move(mine);
  im.err = std::move(err_read);
  // A helper that died at once is seen by wait_done (end of file, its
  // exit status), so a failed send is not an error here.
  send_all(im.sock.get(), to_json(req) + "\n");
  return s;
}

HelperSession::~HelperSession() {
  if (!impl_) return;
  impl_->stop_watching();
  // Closing the socket makes the helper exit (the daemon is gone, or the
  // plugin is done with it); one that does not in 2 s is killed.
  impl_->sock.reset();
  if (!impl_->reap(2000)) impl_->kill_and_reap();
}

HelperDone HelperSession::wait_done(const sdk::Call &call) { return impl_->wait_done(call); }

HelperDone HelperSession::destroy(const sdk::Call &call) {
  impl_->stop_watching();
  if (impl_->reap(0)) {
    return {BLADE_STATUS_FAILED_PRECONDITION,
            impl_->who() + " is no longer running, so it cannot undo the fault it held"};
  }
  impl_->op = "destroy";
  const std::int64_t left = call.remaining_ms();
  const json ask = {{"op", "destroy"},
                    {"deadline_ms", left == std::numeric_limits<std::int64_t>::max() ? 0 : left}};
  if (!send_all(impl_->sock.get(), ask.dump() + "\n")) return impl_->died();
  return impl_->wait_done(call);
}

int HelperSession::pid() const { return impl_->pid; }
std::uint64_t HelperSession::start_time() const { return impl_->start; }
bool HelperSession::alive() const { return !impl_->reap(0); }

}  // namespace blade::cri
