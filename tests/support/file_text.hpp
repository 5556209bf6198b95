// The whole text of a file ("" if it cannot be read): tests read markers,
// logs and /proc entries with it.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace blade::test {

inline std::string read_text(const std::filesystem::path &file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace blade::test
