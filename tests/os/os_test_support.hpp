// Shared by the os plugin's tests: a bladed with only the os plugin, where
// it keeps its backups, a snapshot of a path (bytes, mode, owner, times) to
// compare before/after, and sleeping children to stop and kill.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../support/child_process.hpp"
#include "../support/eventually.hpp"
#include "../support/file_text.hpp"
#include "../support/temp_dir.hpp"
#include "bladed_process.hpp"
#include "experiment_calls.hpp"

namespace blade::test::os {

using nlohmann::json;

inline BladedOptions os_options(std::vector<std::string> args = {}) {
  return only_plugin(std::filesystem::path(BLADE_BUILT_PLUGIN_DIR) / "os.so", std::move(args));
}

// Where the os plugin keeps the backups of experiment `uid` (the file
// faults' originals, a script's unmodified text) under the daemon's state
// dir: <state-dir>/plugins/os/backups/<uid>.
inline std::filesystem::path backup_dir(const BladedProcess &d, const std::string &uid) {
  return d.dir / "state" / "plugins" / "os" / "backups" / uid;
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
  if (S_ISREG(st.st_mode)) s.bytes = read_text(p);
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

// A state letter of a process that is alive and not stopped.
inline bool running(char state) {
  return state == 'S' || state == 'R' || state == 'D';
}

// Copies of /bin/sleep under a name unique to this run, so `process` and
// `process-cmd` match only what the test started.
struct Sleepers {
  TempDir dir{"proc-test"};
  std::string name;
  std::filesystem::path exe;
  std::vector<std::unique_ptr<ChildProcess>> children;

  Sleepers() {
    name = "bst" + std::to_string(::getpid() % 100000) + std::to_string(counter()++);
    exe = dir / name;
    std::filesystem::copy_file("/bin/sleep", exe);
    std::filesystem::permissions(exe, std::filesystem::perms(0755));
  }
  static int &counter() {
    static int n = 0;
    return n;
  }
  // A new sleeper, returned once it runs under the unique name.
  ChildProcess &start() {
    children.push_back(
        std::make_unique<ChildProcess>(std::vector<std::string>{exe.string(), "300"}));
    ChildProcess &c = *children.back();
    const std::string comm = "/proc/" + std::to_string(c.pid()) + "/comm";
    REQUIRE(eventually([&] { return read_text(comm) == name + "\n"; }));
    return c;
  }
};

// The experiment calls every plugin test shares.
using blade::test::Answer;
using blade::test::create;
using blade::test::destroy;
using blade::test::read_text;

}  // namespace blade::test::os
