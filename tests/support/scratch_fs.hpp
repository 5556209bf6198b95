// A memory filesystem the test mounts on a fresh directory (root only),
// unmounted at the end: a small, full or fast filesystem on demand.
#pragma once

#include <sys/mount.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include <doctest/doctest.h>

#include "temp_dir.hpp"

namespace blade::test {

// A memory filesystem (tmpfs of `mib` MiB, or ramfs, which has no size) on
// a fresh directory, unmounted at the end.
class ScratchFs {
 public:
  ScratchFs(const std::string &type, std::uint64_t mib) {
    const std::string options = "size=" + std::to_string(mib) + "m,mode=0755";
    REQUIRE(::mount(type.c_str(), dir_.path().c_str(), type.c_str(), MS_NOSUID | MS_NODEV,
                    options.c_str()) == 0);
  }
  ~ScratchFs() { ::umount2(dir_.path().c_str(), MNT_DETACH); }
  ScratchFs(const ScratchFs &) = delete;
  ScratchFs &operator=(const ScratchFs &) = delete;
  const std::filesystem::path &path() const { return dir_.path(); }
  std::filesystem::path operator/(const std::string &name) const { return dir_.path() / name; }

 private:
  // No "blade" in the name: processes started under it (the crash tests'
  // sleepers, with TMPDIR here) would carry it in their command line, which
  // the process matchers skip as the client's own.
  TempDir dir_{"scratchfs"};
};

}  // namespace blade::test
