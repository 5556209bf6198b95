// Validation of a request's flags against the spec, before anything is
// persisted or any plugin is called.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "blade/core/spec/spec.hpp"

namespace blade {

// Flag name -> value, as text ("60", "true", "0-1,3").
using FlagValues = std::map<std::string, std::string>;

// Turns a JSON object of flags into text values: strings as they are,
// numbers in their shortest form, booleans as "true"/"false". Anything else
// (null, array, object, a non-object) is an InvalidArgument naming
// "flags" or "flags.<name>".
FlagValues flags_from_json(const nlohmann::json &flags);

// Checks `input` against the action's effective flags and returns the
// normalised values with defaults applied. Every problem is reported, each
// as a FieldError on "flags.<name>", in one blade::Error (InvalidArgument):
// unknown flags, missing required flags, wrong types, out-of-range values,
// values outside an enum, malformed lists.
FlagValues validate_flags(const TargetSpec &target, const ActionSpec &action,
                          const FlagValues &input);

}  // namespace blade
