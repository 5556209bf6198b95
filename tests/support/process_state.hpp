// A process's state letter from /proc/<pid>/stat: 'S' sleeping, 'R'
// running, 'T' stopped ...; 0 when the process is gone.
#pragma once

#include <sys/types.h>

#include <fstream>
#include <string>

namespace blade::test {

inline char process_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  // The command name may hold spaces and ')': the state follows the last ')'.
  const auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() ? 0 : line[close + 2];
}

}  // namespace blade::test
