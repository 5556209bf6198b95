#include "strace_syscalls.hpp"

#include <string.h>

#include <algorithm>
#include <charconv>

namespace blade::os {

namespace {
// The largest errno the kernel can hand back: a return in [-4095, -1].
constexpr int kMaxErrno = 4095;
}  // namespace

std::optional<long> syscall_number(std::string_view name) {
  const SyscallEntry *end = kSyscallTable + kSyscallTableSize;
  const SyscallEntry *it = std::lower_bound(
      kSyscallTable, end, name,
      [](const SyscallEntry &e, std::string_view n) { return std::string_view(e.name) < n; });
  if (it == end || std::string_view(it->name) != name) return std::nullopt;
  return it->number;
}

std::optional<int> errno_number(std::string_view text) {
  int n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec == std::errc() && end == text.data() + text.size())
    return n >= 1 && n <= kMaxErrno ? std::optional<int>(n) : std::nullopt;
  // Every name the C library knows (the kernel's errnos are below 200).
  for (int e = 1; e < 200; ++e) {
    const char *name = ::strerrorname_np(e);
    if (name && text == name) return e;
  }
  return std::nullopt;
}

std::string errno_name(int err) {
  const char *name = ::strerrorname_np(err);
  return name ? std::string(name) : std::to_string(err);
}

}  // namespace blade::os
