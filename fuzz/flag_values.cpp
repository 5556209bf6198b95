// Fuzz target: flag values, through validate_flags against the all-types
// spec (fuzz every, fuzz strict). Two input forms:
//   - starting with '{': a JSON object of flags, as a create body carries
//     it (flags_from_json first, so numbers and booleans are covered);
//   - otherwise lines "name=value" (value up to the newline, may be empty;
//     a line without '=' is a name with an empty value), the shape that
//     reaches the fuzzer fastest.
// Beyond not crashing: what validate_flags returns is normalised, so
// validating it again returns it unchanged.
#include <nlohmann/json.hpp>

#include "all_types_spec.hpp"
#include "blade/core/model/error.hpp"
#include "blade/core/spec/flag_validation.hpp"
#include "fuzz_check.hpp"

namespace {

using namespace blade;

FlagValues from_lines(const std::string &text) {
  FlagValues values;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    const std::size_t eq = line.find('=');
    values[line.substr(0, eq)] = eq == std::string::npos ? "" : line.substr(eq + 1);
    start = end + 1;
  }
  return values;
}

void validate(const TargetSpec &target, const ActionSpec &action, const FlagValues &input) {
  FlagValues output;
  try {
    output = validate_flags(target, action, input);
  } catch (const Error &error) {
    FUZZ_CHECK(error.code() == ErrorCode::InvalidArgument && !error.details().empty());
    return;
  }
  FUZZ_CHECK(validate_flags(target, action, output) == output);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string text = fuzz::input_text(data, size);
  FlagValues input;
  if (!text.empty() && text.front() == '{') {
    const auto json = nlohmann::json::parse(text, nullptr, false);
    if (json.is_discarded()) return 0;
    try {
      input = flags_from_json(json);
    } catch (const Error &error) {
      FUZZ_CHECK(error.code() == ErrorCode::InvalidArgument);
      return 0;
    }
  } else {
    input = from_lines(text);
  }
  const TargetSpec &target = fuzz::all_types_spec().items.front();
  for (const ActionSpec &action : target.actions)
    validate(target, action, input);
  return 0;
}
