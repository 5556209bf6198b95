// Takes every free byte of the filesystem holding a directory while it
// lives, so the next write there that needs room fails (ENOSPC): a full
// disk under the store, on a small scratch filesystem.
#pragma once

#include <cstdio>
#include <filesystem>
#include <string>

#include <doctest/doctest.h>

namespace blade::test {

class DiskFiller {
 public:
  explicit DiskFiller(const std::filesystem::path &dir) : path_(dir / "filler") {
    std::FILE *f = std::fopen(path_.c_str(), "wb");
    REQUIRE(f);
    std::setvbuf(f, nullptr, _IONBF, 0);
    static const std::string block(64 * 1024, '\0');
    // Large pieces first, then single bytes, until the filesystem says no.
    for (std::size_t piece : {block.size(), std::size_t{4096}, std::size_t{1}})
      while (std::fwrite(block.data(), 1, piece, f) == piece) {
      }
    std::fclose(f);
  }
  ~DiskFiller() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  DiskFiller(const DiskFiller &) = delete;
  DiskFiller &operator=(const DiskFiller &) = delete;

 private:
  std::filesystem::path path_;
};

}  // namespace blade::test
