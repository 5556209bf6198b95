// The fixed spec that the fuzz targets validate flags against: every flag
// type, single and as a list, with and without bounds, defaults, a switch,
// target flags and matchers, a required flag, a second scope. Parsed once
// from YAML by parse_spec_yaml, so it is a spec a plugin could ship.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "blade/core/spec/spec.hpp"

namespace blade::fuzz {

const PluginSpec &all_types_spec();

// The (target, action) a create of (scope, target, action-or-alias) names,
// as the service resolves a plugin's; throws Error(NotFound) like it.
std::pair<const TargetSpec *, const ActionSpec *> resolve(const std::string &scope,
                                                          const std::string &target,
                                                          const std::string &action);

// The lookup /chaosblade?cmd=create parses flags with (FlagSpecLookup).
std::vector<FlagSpec> flag_specs(const std::string &scope, const std::string &target,
                                 const std::string &action);

}  // namespace blade::fuzz
