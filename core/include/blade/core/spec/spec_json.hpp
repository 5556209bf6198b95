// The JSON shape of specs in the API (GET /v1/specs): one entry per
// (scope, target, action) with every flag it takes, so clients (the blade
// CLI's --help, consoles) need no YAML parser. Shared by bladed and blade.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "blade/core/spec/spec.hpp"

namespace blade {

nlohmann::json to_json(const FlagSpec &flag);
// The inverse of to_json(FlagSpec), for clients reading GET /v1/specs.
FlagSpec flag_spec_from_json(const nlohmann::json &j);
// `executor` as in the experiment object: "inprocess:os", "external:chaos_os".
nlohmann::json spec_entry(const TargetSpec &target, const ActionSpec &action,
                          const std::string &executor);

}  // namespace blade
