// Splitting a ChaosBlade command line into words, as a POSIX shell splits
// plain words and quotes, and nothing more: no expansion, no operators, no
// globbing. `;`, `|`, `&&`, `$(...)`, backticks, `>` and `<` are ordinary
// characters inside words. Nothing is ever run; there is no shell anywhere.
// This is what closes CVE-2023-47105 (ChaosBlade's server ran `sh -c`).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace blade::server {

// Words are separated by spaces and tabs (other characters, newline
// included, stay inside words for the command parser to judge).
// - 'single quotes': everything literal up to the next '.
// - "double quotes": literal except that a backslash before ", \, $ or a
//   backtick stands for that character (as in POSIX); before anything else
//   it is kept.
// - a backslash outside quotes takes the next character literally.
// - '' and "" give an empty word; quoted and plain parts join into one
//   word: a'b'"c" is abc.
// Throws blade::Error(InvalidArgument) on field "cmd" for an unterminated
// quote or a trailing backslash.
std::vector<std::string> split_command_words(std::string_view line);

}  // namespace blade::server
