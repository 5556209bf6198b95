// The allocations a benchmarked child process makes, counted by
// bench/malloc_count.c preloaded into it: this side creates the shared
// counter file, hands the child the environment that loads the counter,
// and sums its slots.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "malloc_count_layout.h"

namespace blade::bench {

class MallocCounter {
 public:
  // The layout malloc_count.c writes (malloc_count_layout.h).
  static constexpr std::size_t kSlots = kMallocCountSlots, kSlotBytes = kMallocCountSlotBytes;

  // `file` is created (zeroed) here; it lives as long as the counter.
  explicit MallocCounter(std::filesystem::path file) : file_(std::move(file)) {
    const int fd = ::open(file_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("cannot create " + file_.string());
    if (::ftruncate(fd, kSlots * kSlotBytes) != 0) {
      ::close(fd);
      throw std::runtime_error("cannot size " + file_.string());
    }
    void *p = ::mmap(nullptr, kSlots * kSlotBytes, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) throw std::runtime_error("cannot map " + file_.string());
    base_ = static_cast<const char *>(p);
  }
  ~MallocCounter() {
    ::munmap(const_cast<char *>(base_), kSlots * kSlotBytes);
    std::error_code ec;
    std::filesystem::remove(file_, ec);
  }
  MallocCounter(const MallocCounter &) = delete;
  MallocCounter &operator=(const MallocCounter &) = delete;

  // What the child's environment needs ("K=V") for its allocations to count.
  std::vector<std::string> env() const {
    return {"LD_PRELOAD=" + std::string(BLADE_MALLOC_COUNT_LIB),
            "BLADE_MALLOC_COUNT_FILE=" + file_.string()};
  }

  // Allocations counted so far; 0 until the child has mapped the file (a
  // child that never did, say because the preload failed, reads 0 for ever).
  std::uint64_t total() const {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < kSlots; ++i) {
      // The child adds with relaxed atomics; a relaxed atomic read matches.
      auto *slot = reinterpret_cast<std::uint64_t *>(const_cast<char *>(base_) + i * kSlotBytes);
      sum += std::atomic_ref<std::uint64_t>(*slot).load(std::memory_order_relaxed);
    }
    return sum;
  }

 private:
  std::filesystem::path file_;
  const char *base_ = nullptr;
};

}  // namespace blade::bench
