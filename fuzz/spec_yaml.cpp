// Fuzz target: a plugin's spec YAML, through parse_spec_yaml as the loader
// calls it. Beyond not crashing, a spec it accepts keeps its promise that
// defaults were validated: an action without required flags validates an
// empty request (every default applied) without a problem.
#include <string_view>

#include "blade/core/model/error.hpp"
#include "blade/core/spec/flag_validation.hpp"
#include "blade/core/spec/spec.hpp"
#include "fuzz_check.hpp"

namespace {

using namespace blade;

bool has_required(const TargetSpec &target, const ActionSpec &action) {
  for (const FlagSpec *flag : effective_flags(target, action))
    if (flag->required) return true;
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string_view yaml(reinterpret_cast<const char *>(data), size);
  PluginSpec spec;
  try {
    spec = parse_spec_yaml(yaml);
  } catch (const Error &error) {
    FUZZ_CHECK(error.code() == ErrorCode::InvalidArgument);
    return 0;
  }
  for (const TargetSpec &target : spec.items) {
    for (const ActionSpec &action : target.actions) {
      if (has_required(target, action)) continue;
      try {
        validate_flags(target, action, {});
      } catch (const Error &error) {
        std::fprintf(stderr, "defaults of %s %s refused: %s\n", target.target.c_str(),
                     action.name.c_str(), error.what());
        FUZZ_CHECK(!"an accepted spec's defaults validate");
      }
    }
  }
  return 0;
}
