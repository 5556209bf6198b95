#include "check_plugin_command.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <stdexcept>

#include <fmt/format.h>

#include "blade/core/model/duration.hpp"
#include "blade/core/model/log.hpp"
#include "blade/core/plugin/plugin_json.hpp"
#include "blade/core/plugin/plugin_loader.hpp"
#include "blade/core/plugin/registry.hpp"
#include "build_info.hpp"
#include "config.hpp"

namespace blade::server {

const char *const kExerciseUsage =
    "usage: bladed check-plugin --exercise FILE.so --target T --action A\n"
    "         [--flag NAME=VALUE ...] [--scope S] [--state-dir DIR]\n"
    "         [--call-timeout DURATION] [--config FILE.yaml] [--json]\n"
    "  Loads FILE.so with bladed's loader and drives one fault through it:\n"
    "  load, validate flags, dry run, create, new instance (a simulated\n"
    "  restart), destroy, destroy again (must be idempotent), shutdown.\n"
    "  Prints PASS/FAIL/SKIP per step and a final verdict; exit 0 when no\n"
    "  step failed, 1 otherwise, 2 for a usage error. The fault is real.\n"
    "  --flag NAME=VALUE  a flag of the action (repeat; a switch is NAME=true)\n"
    "  --scope S          the request's scope (default host)\n"
    "  --state-dir DIR    bladed's state dir for the run (default: a private\n"
    "                     temporary one, removed at the end)\n"
    "  --call-timeout D   deadline of each plugin call (default 60s)\n"
    "  --config FILE.yaml the plugin gets its plugins: section of that file,\n"
    "                     validated against its schema as bladed would\n"
    "  --json             print the steps as one JSON document\n";

int check_plugin(const std::filesystem::path &file,
                 const std::map<std::string, std::string> &plugin_configs) {
  blade::log::set_level(blade::log::Level::Warn);
  std::error_code ec;
  auto state =
      std::filesystem::temp_directory_path(ec) / fmt::format("bladed-check-{}", ::getpid());
  blade::Registry registry;
  blade::HostSettings settings{BLADE_VERSION, state};
  settings.plugin_configs = plugin_configs;  // check-plugin --config FILE.yaml
  blade::load_plugins({file}, settings, registry);
  std::filesystem::remove_all(state, ec);
  auto records = registry.records();
  auto json = blade::to_json(records.at(0));
  std::cout << json.dump(2) << "\n";
  return records.at(0).status == blade::PluginRecord::Status::Loaded ? 0 : 1;
}

bool is_exercise_invocation(const std::vector<std::string> &args) {
  if (args.empty() || args[0] != "check-plugin") return false;
  for (const auto &a : args)
    if (a == "--exercise" || a.rfind("--exercise=", 0) == 0) return true;
  return false;
}

namespace {

std::invalid_argument usage_error(const std::string &message) {
  return std::invalid_argument("check-plugin: " + message);
}

}  // namespace

ExerciseInvocation parse_exercise_invocation(const std::vector<std::string> &args) {
  ExerciseInvocation inv;
  ExerciseOptions &o = inv.options;
  o.host_version = BLADE_VERSION;
  o.extra_plugin_dirs.push_back(BLADE_PLUGIN_INSTALL_DIR);  // bladed protects it too
  bool have_file = false, have_target = false, have_action = false, have_config = false;
  // Asked anywhere (even where a value is due), help wins over everything.
  for (const auto &a : args) {
    if (a == "--help" || a == "-h") {
      inv.help = true;
      return inv;
    }
  }
  // args[0] is "check-plugin".
  for (std::size_t i = 1; i < args.size(); ++i) {
    std::string name = args[i];
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); name.rfind("--", 0) == 0 && eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto value = [&]() -> std::string {
      if (inline_value) return *inline_value;
      if (i + 1 >= args.size()) throw usage_error(fmt::format("{}: needs a value", name.substr(2)));
      return args[++i];
    };
    if (name == "--json") {
      inv.json = true;
    } else if (name == "--exercise") {
      o.plugin_file = value();
      have_file = true;
    } else if (name == "--target") {
      o.target = value();
      have_target = true;
    } else if (name == "--action") {
      o.action = value();
      have_action = true;
    } else if (name == "--scope") {
      o.scope = value();
      if (o.scope.empty()) throw usage_error("scope: must not be empty");
    } else if (name == "--state-dir") {
      o.state_dir = value();
      if (o.state_dir->empty()) throw usage_error("state-dir: must not be empty");
    } else if (name == "--call-timeout") {
      std::string text = value();
      auto d = parse_duration(text);
      if (!d || d->count() <= 0) {
        throw usage_error(fmt::format(
            "call-timeout: '{}' is not a positive duration (e.g. 60, 30s, 500ms)", text));
      }
      o.call_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
      if (o.call_timeout.count() == 0) o.call_timeout = std::chrono::milliseconds(1);
    } else if (name == "--config") {
      if (have_config) throw usage_error("config: given twice");
      have_config = true;
      try {
        o.plugin_configs = read_plugin_configs(value());
      } catch (const std::invalid_argument &e) {
        throw usage_error(fmt::format("config: {}", e.what()));
      }
    } else if (name == "--flag") {
      std::string kv = value();
      auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) {
        throw usage_error(fmt::format("flag: expected NAME=VALUE, got '{}'", kv));
      }
      std::string flag = kv.substr(0, eq);
      if (!o.flags.emplace(flag, kv.substr(eq + 1)).second) {
        throw usage_error(fmt::format("flag: '{}' is given twice", flag));
      }
    } else {
      throw usage_error(fmt::format("unknown option '{}'", args[i]));
    }
  }
  if (!have_file || o.plugin_file.empty()) throw usage_error("exercise: FILE.so is required");
  if (!have_target || o.target.empty()) throw usage_error("target: --target is required");
  if (!have_action || o.action.empty()) throw usage_error("action: --action is required");
  return inv;
}

int run_exercise(const ExerciseInvocation &inv) {
  if (inv.help) {
    std::cout << kExerciseUsage;
    return 0;
  }
  blade::log::set_level(blade::log::Level::Warn);
  ExerciseReport report;
  try {
    report = exercise_plugin(inv.options, [&](const ExerciseStep &step) {
      if (!inv.json) std::cout << verdict_line(step) << std::endl;  // as it happens
    });
  } catch (const ExerciseUsageError &e) {
    std::fprintf(stderr, "bladed: check-plugin: %s\n", e.what());
    return 2;
  }
  if (inv.json) {
    std::cout << to_json(report).dump(2) << "\n";
  } else {
    std::cout << final_verdict_line(report) << "\n";
  }
  if (report.hung) {
    // A plugin thread is still running its code: no unloading, no static
    // destructors under its feet.
    std::cout.flush();
    std::fflush(nullptr);
    std::_Exit(1);
  }
  return report.passed() ? 0 : 1;
}

}  // namespace blade::server
