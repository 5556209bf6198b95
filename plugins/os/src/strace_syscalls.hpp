// Names for `strace --syscall-name` and `--return-value`: syscall numbers
// from a table generated at build time from the kernel's unistd_64.h
// (plugins/os/tools/syscall_table.py; empty on other architectures), and
// errno names from the C library.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace blade::os {

struct SyscallEntry {
  const char *name;
  long number;
};

// Sorted by name; kSyscallTableSize is 0 where the plugin was built without
// the x86_64 list.
extern const SyscallEntry kSyscallTable[];
extern const std::size_t kSyscallTableSize;

std::optional<long> syscall_number(std::string_view name);

// "ENOENT" or "2" (1-4095, the range the kernel returns as -errno).
std::optional<int> errno_number(std::string_view text);

// "ENOENT" for 2; the number as text when the C library has no name.
std::string errno_name(int err);

}  // namespace blade::os
