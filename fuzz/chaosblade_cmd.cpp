// Fuzz target: the cmd of GET|POST /chaosblade?cmd=<line>, as the route
// handles it after httplib has decoded the query: split_command_words, then
// parse_blade_command with a flag lookup over the all-types spec, then for a
// create what the service checks before anything runs (flags, timeout).
// A blade::Error is a refusal and expected; anything else crashes.
#include <string>
#include <vector>

#include "all_types_spec.hpp"
#include "blade/core/model/error.hpp"
#include "blade/core/model/timeout.hpp"
#include "blade/core/spec/flag_validation.hpp"
#include "compat/blade_command.hpp"
#include "compat/command_words.hpp"
#include "fuzz_check.hpp"

namespace {

using namespace blade;

// A word in single quotes, each ' written as '\'' (as a shell would take it).
std::string single_quoted(const std::string &word) {
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Words quoted back into a line split into the same words.
void check_round_trip(const std::vector<std::string> &words) {
  std::string line;
  for (const std::string &word : words) {
    if (!line.empty()) line += ' ';
    line += single_quoted(word);
  }
  FUZZ_CHECK(server::split_command_words(line) == words);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string line = fuzz::input_text(data, size);
  std::vector<std::string> words;
  try {
    words = server::split_command_words(line);
  } catch (const Error &error) {
    FUZZ_CHECK(error.code() == ErrorCode::InvalidArgument);
    return 0;
  }
  check_round_trip(words);
  try {
    const server::BladeCommand command = server::parse_blade_command(words, fuzz::flag_specs);
    if (command.verb == server::BladeVerb::Create) {
      const CreateRequest &create = command.create;
      const auto [target, action] = fuzz::resolve(create.scope, create.target, create.action);
      validate_flags(*target, *action, create.flags);
      if (create.timeout) parse_timeout_seconds(*create.timeout);
    }
  } catch (const Error &) {
  }
  return 0;
}
