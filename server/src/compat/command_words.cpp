#include "command_words.hpp"

#include <optional>

#include <fmt/format.h>

#include "blade/core/model/error.hpp"

namespace blade::server {
namespace {

[[noreturn]] void illegal(const std::string &description) {
  throw Error(ErrorCode::InvalidArgument, "cmd: " + description, {{"cmd", description}});
}

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

// Inside double quotes a backslash only escapes what POSIX says it escapes;
// `$` and the backtick are listed so that a line written for a shell means
// the same here, although neither would be special to us.
bool escapable_in_double_quotes(char c) {
  return c == '"' || c == '\\' || c == '$' || c == '`';
}

}  // namespace

std::vector<std::string> split_command_words(std::string_view line) {
  std::vector<std::string> words;
  // Set once a word has begun, so that '' yields an empty word.
  std::optional<std::string> word;
  std::size_t i = 0;
  while (i < line.size()) {
    const char c = line[i];
    if (is_blank(c)) {
      if (word) words.push_back(std::move(*word));
      word.reset();
      ++i;
      continue;
    }
    if (!word) word.emplace();
    if (c == '\\') {
      if (i + 1 >= line.size()) illegal("ends with a backslash that escapes nothing");
      word->push_back(line[i + 1]);
      i += 2;
    } else if (c == '\'') {
      const std::size_t close = line.find('\'', i + 1);
      if (close == std::string_view::npos)
        illegal(fmt::format("unterminated ' quote at offset {}", i));
      word->append(line.substr(i + 1, close - i - 1));
      i = close + 1;
    } else if (c == '"') {
      const std::size_t open = i++;
      for (;;) {
        if (i >= line.size()) illegal(fmt::format("unterminated \" quote at offset {}", open));
        const char d = line[i];
        if (d == '"') break;
        if (d == '\\' && i + 1 < line.size() && escapable_in_double_quotes(line[i + 1])) {
          word->push_back(line[i + 1]);
          i += 2;
        } else {
          word->push_back(d);
          ++i;
        }
      }
      ++i;  // the closing quote
    } else {
      word->push_back(c);
      ++i;
    }
  }
  if (word) words.push_back(std::move(*word));
  return words;
}

}  // namespace blade::server
