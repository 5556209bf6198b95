// Shared by the file and script tests: a bladed with only the os plugin, and
// a snapshot of a path (bytes, mode, owner, times) to compare before/after.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../support/eventually.hpp"
#include "bladed_process.hpp"
#include "experiment_calls.hpp"

namespace blade::test::os {

using nlohmann::json;

inline BladedOptions os_options(std::vector<std::string> args = {}) {
  return only_plugin(std::filesystem::path(BLADE_BUILT_PLUGIN_DIR) / "os.so", std::move(args));
}

inline std::string slurp(const std::filesystem::path &p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void spit(const std::filesystem::path &p, const std::string &bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// What a path is: compared whole before a fault and after its destroy.
struct Snapshot {
  bool exists = false;
  std::string bytes;
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  long long mtime_ns = 0;
  bool operator==(const Snapshot &) const = default;
};

inline Snapshot snap(const std::filesystem::path &p) {
  Snapshot s;
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return s;
  s.exists = true;
  s.mode = st.st_mode;
  s.uid = st.st_uid;
  s.gid = st.st_gid;
  s.mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
  if (S_ISREG(st.st_mode)) s.bytes = slurp(p);
  return s;
}

inline std::ostream &operator<<(std::ostream &os, const Snapshot &s) {
  return os << "{exists=" << s.exists << " mode=" << std::oct << s.mode << std::dec
            << " uid=" << s.uid << " gid=" << s.gid << " bytes=" << s.bytes.size() << "}";
}

// A file owned by uid/gid 1234 with an unusual mode, so a restore that loses
// owner or mode shows.
inline void make_file(const std::filesystem::path &p, const std::string &bytes,
                      mode_t mode = 0640) {
  spit(p, bytes);
  REQUIRE(::chown(p.c_str(), 1234, 1234) == 0);
  REQUIRE(::chmod(p.c_str(), mode) == 0);
}

// The experiment calls every plugin test shares.
using blade::test::Answer;
using blade::test::create;
using blade::test::destroy;

}  // namespace blade::test::os
