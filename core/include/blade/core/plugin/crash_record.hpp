// What bladed was doing inside a plugin when it died of a fatal signal.
//
// A plugin runs in the daemon's address space, so a plugin bug that
// segfaults in destroy takes bladed down, and recovery at the next start
// would call that destroy again: a crash loop. The handler installed here
// writes one line naming the plugin call to stderr and to a record file
// (async-signal-safe calls only), then lets the signal kill the process; the
// next start reads the record and quarantines that experiment.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace blade {

// The plugin call bladed died in, as its crash handler recorded it.
struct CrashedCall {
  std::string uid;
  std::string op;  // "create", "destroy", "dry_run"
  std::string plugin;
  int signal = 0;
};

// Installs handlers for SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT that
// record the current thread's plugin call (if any) in `record_file`, then
// re-raise the signal with its default action. Call once, early in main.
void install_crash_handler(const std::filesystem::path &record_file);

// Reads a record left by a previous process; nullopt when there is none or
// it cannot be parsed.
std::optional<CrashedCall> read_crash_record(const std::filesystem::path &record_file);

// Marks the calling thread as inside a plugin call for its lifetime.
class PluginCallMark {
 public:
  PluginCallMark(std::string_view plugin, std::string_view op, std::string_view uid) noexcept;
  ~PluginCallMark();
  PluginCallMark(const PluginCallMark &) = delete;
  PluginCallMark &operator=(const PluginCallMark &) = delete;

 private:
  bool outer_;  // false when nested in another mark (a create's undo)
};

}  // namespace blade
