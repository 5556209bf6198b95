// SPDX-License-Identifier: Apache-2.0
// Named failpoints: places in create, destroy and recovery where a test can
// make the process die (or fail, or stall) on purpose, to prove that a crash
// at that exact moment leaves no fault behind.
//
//   BLADE_FAILPOINT("disk.fill.after_fallocate");
//
// Compiled in only when BLADE_FAILPOINTS is defined (test builds: meson
// option `failpoints`); otherwise the macro is empty and costs nothing.
// Armed at run time by the environment of the process:
//
//   BLADE_FAILPOINTS="disk.fill.after_fallocate=kill;os.file.before_rename=abort"
//
// Actions: kill (SIGKILL to itself: a crash with no handler run), abort
// (SIGABRT: the crash handler runs), error (throws std::runtime_error, which
// a plugin call turns into INTERNAL), sleep:<ms>. `name=kill@3` acts on the
// third hit only. BLADE_FAILPOINTS_LOG=<file> appends the name of every
// failpoint hit, one a line, so a test can list the windows a run passes
// through and then aim at each.
//
// Header only, for the daemon and for plugins alike: each copy reads the
// environment once.
#ifndef BLADE_FAILPOINT_HPP
#define BLADE_FAILPOINT_HPP

#ifdef BLADE_FAILPOINTS

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

namespace blade::failpoint {

struct Action {
  std::string kind;     // kill, abort, error, sleep
  long argument = 0;    // sleep: milliseconds
  long on_hit = 0;      // 0: every hit; n: the n-th only
  std::atomic<long> hits{0};
};

class Table {
 public:
  Table() {
    const char *spec = std::getenv("BLADE_FAILPOINTS");
    if (const char *log = std::getenv("BLADE_FAILPOINTS_LOG")) log_ = log;
    if (!spec) return;
    std::string_view rest(spec);
    while (!rest.empty()) {
      auto end = rest.find(';');
      std::string_view item = rest.substr(0, end);
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
      auto eq = item.find('=');
      if (eq == std::string_view::npos) continue;
      std::string name(item.substr(0, eq));
      std::string action(item.substr(eq + 1));
      auto &a = actions_[name];
      if (auto at = action.find('@'); at != std::string::npos) {
        a.on_hit = std::strtol(action.c_str() + at + 1, nullptr, 10);
        action.resize(at);
      }
      if (auto colon = action.find(':'); colon != std::string::npos) {
        a.argument = std::strtol(action.c_str() + colon + 1, nullptr, 10);
        action.resize(colon);
      }
      a.kind = action;
    }
  }

  void hit(const char *name) {
    if (!log_.empty()) record(name);
    auto it = actions_.find(name);
    if (it == actions_.end()) return;
    Action &a = it->second;
    long n = ++a.hits;
    if (a.on_hit != 0 && n != a.on_hit) return;
    if (a.kind == "kill") {
      ::kill(::getpid(), SIGKILL);
      for (;;) ::pause();  // SIGKILL is on its way
    }
    if (a.kind == "abort") std::abort();
    if (a.kind == "error") throw std::runtime_error(std::string("failpoint ") + name);
    if (a.kind == "sleep") std::this_thread::sleep_for(std::chrono::milliseconds(a.argument));
  }

 private:
  void record(const char *name) {
    // O_APPEND writes of one short line do not interleave between threads
    // or processes; the write happens before the action, so a kill still
    // leaves the name.
    std::string line = std::string(name) + "\n";
    int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return;
    ssize_t ignored = ::write(fd, line.data(), line.size());
    (void)ignored;
    ::close(fd);
  }

  std::map<std::string, Action, std::less<>> actions_;
  std::string log_;
};

inline Table &table() {
  static Table t;
  return t;
}

inline void hit(const char *name) {
  table().hit(name);
}

}  // namespace blade::failpoint

#define BLADE_FAILPOINT(name) ::blade::failpoint::hit(name)

#else

#define BLADE_FAILPOINT(name) ((void)0)

#endif  // BLADE_FAILPOINTS

#endif  // BLADE_FAILPOINT_HPP
