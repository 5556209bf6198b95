// `bladed check-plugin`: validate a plugin file as the daemon would load it,
// and with --exercise drive one fault through its whole life
// (core/plugin_exercise.hpp). Here only the command line and the printing.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "blade/core/plugin/plugin_exercise.hpp"

namespace blade::server {

// True when `args` (argv after the program name) ask for the exercise mode.
bool is_exercise_invocation(const std::vector<std::string> &args);

struct ExerciseInvocation {
  ExerciseOptions options;
  bool json = false;
  bool help = false;
};

// Parses `check-plugin --exercise FILE.so --target T --action A [...]`.
// Throws std::invalid_argument naming the option at fault.
ExerciseInvocation parse_exercise_invocation(const std::vector<std::string> &args);

extern const char *const kExerciseUsage;

// `bladed check-plugin FILE.so`: loads it, prints its record; 0 if loaded.
// `plugin_configs`: the plugins: sections of `--config FILE.yaml`.
int check_plugin(const std::filesystem::path &file,
                 const std::map<std::string, std::string> &plugin_configs = {});

// Runs the exercise and prints a verdict line per step (or, with --json, one
// document). 0 when no step failed, 1 otherwise, 2 for a target/action the
// plugin does not serve. When a call hung, the process ends here.
int run_exercise(const ExerciseInvocation &invocation);

}  // namespace blade::server
