// The host's memory figures, as /proc/meminfo gives them.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

#include <doctest/doctest.h>

namespace blade::test {

// The /proc/meminfo line `key` ("MemAvailable", "AnonPages", ...) in MiB.
inline std::int64_t meminfo_mb(const std::string &key) {
  std::ifstream in("/proc/meminfo");
  std::string k;
  std::int64_t kb = 0;
  std::string rest;
  while (in >> k >> kb) {
    std::getline(in, rest);
    if (k == key + ":") return kb / 1024;
  }
  FAIL("no " << key << " in /proc/meminfo");
  return 0;
}

}  // namespace blade::test
