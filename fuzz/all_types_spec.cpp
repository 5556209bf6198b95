#include "all_types_spec.hpp"

#include <fmt/format.h>

#include "blade/core/model/error.hpp"

namespace blade::fuzz {
namespace {

constexpr const char *kYaml = R"(version: v1
kind: plugin
items:
- target: fuzz
  scope: host
  flags:
  - {name: target-flag, desc: shared by every action}
  actions:
  - action: every
    aliases: [all, e]
    matchers:
    - {name: process, type: string}
    - {name: pid, type: int, list: true, min: 1}
    flags:
    - {name: text, type: string}
    - {name: count, type: int, min: -5, max: 1000, default: "3"}
    - {name: big, type: int}
    - {name: ints, type: int, list: true, min: 0, max: 10}
    - {name: ratio, type: float, min: 0, max: 1.5}
    - {name: floats, type: float, list: true}
    - {name: force, noArgs: true}
    - {name: enabled, type: bool, default: "false"}
    - {name: wait, type: duration, min: 1, max: 3600, default: 30s}
    - {name: delays, type: duration, list: true}
    - {name: ip, type: ip}
    - {name: ips, type: ip, list: true}
    - {name: cidr, type: cidr}
    - {name: cidrs, type: cidr, list: true}
    - {name: port, type: port, min: 1024}
    - {name: ports, type: port, list: true}
    - {name: range, type: port-range}
    - {name: ranges, type: port-range, list: true}
    - {name: path, type: path}
    - {name: paths, type: path, list: true}
    - {name: mode, type: enum, values: [ram, cache, "two words"], default: ram}
    - {name: modes, type: enum, values: [a, b], list: true}
  - action: strict
    flags:
    - {name: must, required: true, type: int}
    - {name: also, required: true, type: path}
    - {name: off, type: bool}
- target: box
  scope: container
  actions:
  - action: stop
    flags:
    - {name: container-id, required: true}
    - {name: signal, type: enum, values: [TERM, KILL]}
)";

}  // namespace

const PluginSpec &all_types_spec() {
  static const PluginSpec spec = parse_spec_yaml(kYaml);
  return spec;
}

std::pair<const TargetSpec *, const ActionSpec *> resolve(const std::string &scope,
                                                          const std::string &target,
                                                          const std::string &action) {
  std::pair<const TargetSpec *, const ActionSpec *> found{nullptr, nullptr};
  for_each_route_name(all_types_spec(), [&](const TargetSpec &t, const ActionSpec &a,
                                            const std::string &name) {
    if (!found.first && t.scope == scope && t.target == target && name == action)
      found = {&t, &a};
  });
  if (!found.first) {
    throw Error(ErrorCode::NotFound,
                fmt::format("no executor serves '{} {}' in scope {}", target, action, scope),
                {{"action", "not served"}});
  }
  return found;
}

std::vector<FlagSpec> flag_specs(const std::string &scope, const std::string &target,
                                 const std::string &action) {
  const auto [t, a] = resolve(scope, target, action);
  std::vector<FlagSpec> flags;
  for (const FlagSpec *flag : effective_flags(*t, *a))
    flags.push_back(*flag);
  return flags;
}

}  // namespace blade::fuzz
