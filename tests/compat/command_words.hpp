// The words of an example line as a POSIX shell would split it (quotes and
// backslashes, nothing expanded), and the substitutions made on them.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace blade::test::compat {

// `blade create file add --content "HELLO WORLD"` -> its words, without the
// leading `blade`.
inline std::vector<std::string> command_words(const std::string &line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quote == '\'') {
      if (c == '\'') quote = 0;
      else word += c;
    } else if (quote == '"') {
      if (c == '"') quote = 0;
      else if (c == '\\' && i + 1 < line.size() && std::string("\"\\$`").find(line[i + 1]) != std::string::npos)
        word += line[++i];
      else word += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < line.size()) {
      word += line[++i];
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(word);
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (quote) throw std::invalid_argument("unterminated quote in: " + line);
  if (in_word) words.push_back(word);
  if (words.empty() || words.front() != "blade") throw std::invalid_argument("not a blade line: " + line);
  words.erase(words.begin());
  return words;
}

// The words back as one line to print (a word with a space in double quotes).
inline std::string shown(const std::vector<std::string> &words) {
  std::string line = "blade";
  for (const auto &w : words)
    line += " " + (w.find(' ') == std::string::npos ? w : "\"" + w + "\"");
  return line;
}

// Every absolute path of the example (`/home/x`, `--filepath=/home/x`) moved
// under `root`, so the row touches only its own temp dir.
inline std::vector<std::string> rebased(std::vector<std::string> words,
                                        const std::filesystem::path &root) {
  for (auto &w : words) {
    if (!w.empty() && w.front() == '/') {
      w = root.string() + w;
    } else if (const auto eq = w.find("=/"); w.rfind("--", 0) == 0 && eq != std::string::npos) {
      w = w.substr(0, eq + 1) + root.string() + w.substr(eq + 1);
    }
  }
  return words;
}

// `--flag value` (or `--flag=value`) set to `value`; appended when missing.
inline std::vector<std::string> with_flag(std::vector<std::string> words, const std::string &flag,
                                          const std::string &value) {
  const std::string dashed = "--" + flag;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (words[i] == dashed && i + 1 < words.size()) {
      words[i + 1] = value;
      return words;
    }
    if (words[i].rfind(dashed + "=", 0) == 0) {
      words[i] = dashed + "=" + value;
      return words;
    }
  }
  words.push_back(dashed);
  words.push_back(value);
  return words;
}

}  // namespace blade::test::compat
