// The live spec (GET /v1/specs) as blade reads it: which (scope, target,
// action) the daemon serves, under which aliases, with which flags; and the
// help text of `blade create <target> <action> --help` made from it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "blade/core/spec/spec.hpp"

namespace blade::cli {

// The entry serving (scope, target, action or one of its aliases).
std::optional<nlohmann::json> find_spec_entry(const nlohmann::json &specs, const std::string &scope,
                                              const std::string &target, const std::string &action);

// Every flag of an entry, as the core's FlagSpec.
std::vector<FlagSpec> entry_flags(const nlohmann::json &entry);

// The create help of one entry: usage, descriptions, flags with their type,
// range, values, default and whether required, the common flags, examples.
std::string create_help(const nlohmann::json &entry);

// "blade create --help" without target or action: what this daemon serves.
std::string targets_help(const nlohmann::json &specs, const std::string &target = {});

}  // namespace blade::cli
