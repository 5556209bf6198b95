// `bladed check-plugin --exercise`: one fault driven through a plugin's
// whole life the way bladed drives it (load, flag validation with defaults,
// dry run, create, a restart, destroy, destroy again, shutdown), with a
// verdict per step. Uses the daemon's own loader and host API, so what
// passes here is what bladed accepts.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "blade/core/spec/flag_validation.hpp"

namespace blade {

struct ExerciseOptions {
  std::filesystem::path plugin_file;
  std::string scope = "host";
  std::string target;
  std::string action;  // a canonical name or an alias, as a request may give
  FlagValues flags;    // as given; validated against the plugin's spec here
  // bladed's state dir for the run: the plugin's own dir is
  // <state_dir>/plugins/<name>. Unset: a private temporary dir, removed at
  // the end.
  std::optional<std::filesystem::path> state_dir;
  // Directories bladed would also protect (its install plugin dir); the
  // plugin file's own directory is always protected.
  std::vector<std::filesystem::path> extra_plugin_dirs;
  // Each plugin call (init, dry_run, create, destroy, shutdown) must answer
  // within this; the plugin sees it as the call's deadline.
  std::chrono::milliseconds call_timeout{60'000};
  // Plugin name -> its config section as JSON text (a config file's
  // plugins: map), validated against the plugin's schema as bladed would.
  std::map<std::string, std::string> plugin_configs;
  std::string host_version;
};

enum class StepVerdict { Pass, Fail, Skip };
std::string_view to_string(StepVerdict verdict);  // "PASS", "FAIL", "SKIP"

struct ExerciseStep {
  std::string name;  // "load", "validate flags", "dry run", "create", ...
  StepVerdict verdict = StepVerdict::Pass;
  std::string detail;
  std::optional<std::string> status;  // the plugin's blade_status name, for a call
  // What the call handed back, by output name ("plan", "result", "restore",
  // "saved_ahead"), parsed.
  nlohmann::json outputs = nlohmann::json::object();
};

struct ExerciseReport {
  std::string plugin;  // the descriptor's name, once loaded
  std::string version;
  std::filesystem::path file;
  std::string scope, target, action;  // action canonical once resolved
  FlagValues flags;                   // after validation and defaults
  std::vector<ExerciseStep> steps;
  // A call outlived its deadline and is still running on a thread of this
  // process: the library was deliberately left loaded (unloading code a
  // thread is executing would crash), and so was the state dir. The caller
  // must end the process without running the library's destructors.
  bool hung = false;
  bool passed() const;  // no step failed and nothing hung
};

// A request the exercise cannot even start (unknown target or action for
// this plugin): bladed would refuse it before any plugin call. `field()`
// names the option at fault ("target", "action").
class ExerciseUsageError : public std::invalid_argument {
 public:
  ExerciseUsageError(std::string field, const std::string &message)
      : std::invalid_argument(message), field_(std::move(field)) {}
  const std::string &field() const { return field_; }

 private:
  std::string field_;
};

// Runs every step, calling `on_step` as each ends (so a hang still shows
// what came before). Throws ExerciseUsageError for a target/action the
// plugin does not serve; everything the plugin does wrong is a FAIL step,
// never an exception.
ExerciseReport exercise_plugin(const ExerciseOptions &options,
                               const std::function<void(const ExerciseStep &)> &on_step = {});

// "PASS create: status OK; ..." (one line, no newline).
std::string verdict_line(const ExerciseStep &step);
// "PASS exercise: 7 passed, 1 skipped" or "FAIL exercise: ...".
std::string final_verdict_line(const ExerciseReport &report);
nlohmann::json to_json(const ExerciseReport &report);

}  // namespace blade
