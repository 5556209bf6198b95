// The spec model: what a plugin (or a chaosblade-exec spec file) says it
// serves. ChaosBlade's YAML format, extended per flag with type/min/max/values
// so the core validates every flag before a plugin sees it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace blade {

enum class FlagType { String, Int, Float, Bool, Duration, Ip, Cidr, Port, PortRange, Path, Enum };

std::string_view to_string(FlagType type);
std::optional<FlagType> flag_type_from_string(std::string_view name);

struct FlagSpec {
  std::string name;
  std::string desc;
  bool no_args = false;  // a boolean switch: --force
  bool required = false;
  bool required_when_destroyed = false;
  std::optional<std::string> default_value;
  FlagType type = FlagType::String;
  bool list = false;  // a comma-separated list of `type` values
  std::optional<double> min;
  std::optional<double> max;
  std::vector<std::string> values;  // the allowed values of an enum
};

struct ActionSpec {
  std::string name;
  std::vector<std::string> aliases;
  std::string short_desc;
  std::string long_desc;
  std::string example;
  std::vector<FlagSpec> matchers;  // flags that select what is hit
  std::vector<FlagSpec> flags;
  std::vector<std::string> programs;
  std::vector<std::string> categories;
  bool process_hang = false;  // actionProcessHang
};

struct TargetSpec {
  std::string target;
  std::string short_desc;
  std::string long_desc;
  std::string scope = "host";
  std::vector<FlagSpec> flags;  // shared by every action of the target
  std::vector<ActionSpec> actions;
};

struct PluginSpec {
  std::string version;  // "v1"
  std::string kind;     // "plugin"
  std::vector<TargetSpec> items;
};

// Parses and validates a spec YAML document. Throws blade::Error
// (InvalidArgument) whose message and details name the offending node by
// path, e.g. "items[0].actions[1].flags[2].type".
PluginSpec parse_spec_yaml(std::string_view yaml);

// Every flag an action accepts: the target's flags, then the action's
// matchers, then its own flags.
std::vector<const FlagSpec *> effective_flags(const TargetSpec &target, const ActionSpec &action);

// Calls f(target, action, name) for every name a request may use for an
// action of `spec`: its canonical name, then each alias.
template <class F>
void for_each_route_name(const PluginSpec &spec, F &&f) {
  for (const TargetSpec &t : spec.items) {
    for (const ActionSpec &a : t.actions) {
      f(t, a, a.name);
      for (const std::string &alias : a.aliases)
        f(t, a, alias);
    }
  }
}

}  // namespace blade
