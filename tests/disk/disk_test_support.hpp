// What the disk tests measure with: filesystems the test mounts itself (a
// tmpfs, a loop-mounted image), their space as df counts it, and the io a
// process or a device has done.
#pragma once

#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "../support/child_process.hpp"
#include "../support/file_text.hpp"
#include "../support/scratch_fs.hpp"
#include "../support/temp_dir.hpp"
#include "experiment_calls.hpp"

namespace blade::test::disk {

namespace fs = std::filesystem;
constexpr std::uint64_t kMiB = 1024 * 1024;

inline BladedOptions disk_options(std::vector<std::string> args = {}) {
  return only_plugin(fs::path(BLADE_BUILT_PLUGIN_DIR) / "disk.so", std::move(args));
}

// Space as df shows it, read independently of the plugin.
struct Usage {
  std::uint64_t size = 0, used = 0, available = 0;
  double used_percent() const {
    return 100.0 * static_cast<double>(used) / static_cast<double>(used + available);
  }
  // ChaosBlade's figure, the one `disk fill --percent` aims at: root's
  // reserved blocks counted as used.
  double unavailable_percent() const {
    return 100.0 * static_cast<double>(size - available) / static_cast<double>(size);
  }
};

inline Usage usage(const fs::path &p) {
  struct statvfs s {};
  REQUIRE(::statvfs(p.c_str(), &s) == 0);
  Usage u;
  u.size = static_cast<std::uint64_t>(s.f_blocks) * s.f_frsize;
  u.used = static_cast<std::uint64_t>(s.f_blocks - s.f_bfree) * s.f_frsize;
  u.available = static_cast<std::uint64_t>(s.f_bavail) * s.f_frsize;
  return u;
}

inline std::ostream &operator<<(std::ostream &os, const Usage &u) {
  return os << "{size=" << u.size << " used=" << u.used << " available=" << u.available << "}";
}

using blade::test::ScratchFs;  // tests/support/scratch_fs.hpp

inline std::string find_program(const std::vector<std::string> &candidates) {
  for (const auto &c : candidates)
    if (fs::exists(c)) return c;
  return {};
}

// Runs argv (no shell) to its end; its exit code, or -1 when it hangs.
inline int run_program(const std::vector<std::string> &argv, const fs::path &log) {
  ChildProcess p(argv, {}, log.string());
  return p.exit_code(std::chrono::seconds(60)).value_or(-1);
}

// An image file formatted with mkfs.<type> and loop-mounted. When the
// machine cannot (no mkfs, no loop device), ok() is false and why() says so.
class LoopFs {
 public:
  LoopFs(const std::string &type, std::uint64_t mib, std::vector<std::string> mkfs_options = {},
         const std::string &mount_options = "") {
    fs::create_directories(mnt_);
    const std::string mkfs = find_program({"/sbin/mkfs." + type, "/usr/sbin/mkfs." + type});
    const std::string mount = find_program({"/bin/mount", "/usr/bin/mount"});
    if (mkfs.empty() || mount.empty()) {
      why_ = "no mkfs." + type + " or mount on this machine";
      return;
    }
    { std::ofstream image(image_); }
    fs::resize_file(image_, mib * kMiB);
    std::vector<std::string> argv = {mkfs, "-q", "-F"};
    argv.insert(argv.end(), mkfs_options.begin(), mkfs_options.end());
    argv.push_back(image_.string());
    if (run_program(argv, log_) != 0) {
      why_ = "mkfs." + type + " failed: " + read_text(log_);
      return;
    }
    const std::string options = mount_options.empty() ? "loop" : "loop," + mount_options;
    if (run_program({mount, "-o", options, image_.string(), mnt_.string()}, log_) != 0) {
      why_ = "loop mount failed: " + read_text(log_);
      return;
    }
    mounted_ = true;
    device_ = source_device(mnt_);
  }
  ~LoopFs() {
    // util-linux sets autoclear on the loop device: it detaches on unmount.
    if (mounted_ && ::umount2(mnt_.c_str(), 0) != 0) ::umount2(mnt_.c_str(), MNT_DETACH);
  }
  LoopFs(const LoopFs &) = delete;
  LoopFs &operator=(const LoopFs &) = delete;

  bool ok() const { return mounted_; }
  const std::string &why() const { return why_; }
  const fs::path &path() const { return mnt_; }
  // The block device's name as in /proc/diskstats (loop3).
  const std::string &device() const { return device_; }

 private:
  static std::string source_device(const fs::path &mnt) {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string id, parent, devno, root, point;
      f >> id >> parent >> devno >> root >> point;
      if (point != mnt.string()) continue;
      const auto dash = line.find(" - ");
      std::istringstream tail(line.substr(dash + 3));
      std::string type, source;
      tail >> type >> source;
      return fs::path(source).filename().string();
    }
    return {};
  }

  TempDir dir_{"blade-loopfs"};
  fs::path image_ = dir_ / "image";
  fs::path mnt_ = dir_ / "mnt";
  fs::path log_ = dir_ / "commands.log";
  bool mounted_ = false;
  std::string why_, device_;
};

// A process's io (/proc/<pid>/io): bytes its read and write calls moved,
// and bytes it made the storage layer read and write.
struct ProcessIo {
  std::uint64_t rchar = 0, wchar = 0, read_bytes = 0, write_bytes = 0;
};

inline ProcessIo process_io(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/io");
  ProcessIo io;
  std::string key;
  std::uint64_t value = 0;
  while (in >> key >> value) {
    if (key == "rchar:") io.rchar = value;
    if (key == "wchar:") io.wchar = value;
    if (key == "read_bytes:") io.read_bytes = value;
    if (key == "write_bytes:") io.write_bytes = value;
  }
  return io;
}

// Sectors a block device has read and written (/proc/diskstats).
struct DeviceIo {
  std::uint64_t sectors_read = 0, sectors_written = 0;
};

inline DeviceIo device_io(const std::string &name) {
  std::ifstream in("/proc/diskstats");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string major, minor, dev;
    f >> major >> minor >> dev;
    if (dev != name) continue;
    std::uint64_t v[7] = {};
    for (auto &x : v)
      f >> x;
    return {v[2], v[6]};
  }
  FAIL("no device " << name << " in /proc/diskstats");
  return {};
}

// Input a disk action must refuse: a 400 naming `field`, its message
// holding `says`.
struct Refusal {
  nlohmann::json flags;
  std::string field;
  std::string says;
};

inline void check_refused(httplib::Client &c, const std::string &action,
                          const std::vector<Refusal> &refusals) {
  for (const auto &r : refusals) {
    CAPTURE(r.flags.dump());
    auto a = create(c, "disk", action, r.flags);
    CHECK(a.status == 400);
    CHECK(a.body["code"] == "INVALID_ARGUMENT");
    CHECK(a.field() == r.field);
    CHECK_MESSAGE(a.message().find(r.says) != std::string::npos, a.message());
  }
}

// Names in `dir` (files left behind show up here).
inline std::vector<std::string> entries(const fs::path &dir) {
  std::vector<std::string> out;
  for (const auto &e : fs::directory_iterator(dir))
    out.push_back(e.path().filename().string());
  return out;
}

}  // namespace blade::test::disk
