// Reading processes from /proc: who a process is (comm, command line,
// parent, kernel thread or not) and how to recognise it again later (pid
// plus start time, so a reused pid is never taken for the old process), and
// a signal that reaches only that very process. What the guard against
// hitting the wrong process (pid_guard.hpp) and every fault that stops or
// kills a process stand on. Header only, shared by the plugins of this
// repository; only the standard library and Linux.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "handles.hpp"

namespace blade::plugins::proc {

namespace detail {

// A whole /proc file (they report a size of 0, so read to the end).
inline std::optional<std::string> read_text(const std::string &path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

template <class T>
bool parse_number(std::string_view text, T &out, int base = 10) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return ec == std::errc() && end == text.data() + text.size();
}

inline std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n'))
      ++i;
    std::size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t' && s[i] != '\n')
      ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

inline std::string proc_path(pid_t pid, const char *leaf) {
  return "/proc/" + std::to_string(pid) + "/" + leaf;
}

inline int pidfd_open(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

inline int pidfd_send_signal(int fd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0));
}

// PF_KTHREAD of include/linux/sched.h, in field 9 of /proc/<pid>/stat.
constexpr std::uint64_t kPfKthread = 0x00200000;

}  // namespace detail

// The fields of /proc/<pid>/stat the faults need.
struct Stat {
  std::string comm;
  char state = '?';
  pid_t ppid = 0;
  std::uint64_t flags = 0;       // field 9: PF_* flags
  std::uint64_t start_time = 0;  // field 22: clock ticks after boot
};

// Parses one /proc/<pid>/stat line. The comm may itself hold spaces and ')',
// so the fields are read after the LAST ')'. nullopt when malformed.
inline std::optional<Stat> parse_stat(std::string_view line) {
  auto open = line.find('(');
  auto close = line.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    return std::nullopt;
  Stat s;
  s.comm = std::string(line.substr(open + 1, close - open - 1));
  // Fields from 3 (state) on; field k is rest[k - 3].
  auto rest = detail::split_ws(line.substr(close + 1));
  if (rest.size() < 20 || rest[0].size() != 1) return std::nullopt;
  s.state = rest[0][0];
  if (!detail::parse_number(rest[1], s.ppid) || !detail::parse_number(rest[6], s.flags) ||
      !detail::parse_number(rest[19], s.start_time))
    return std::nullopt;
  return s;
}

struct Process {
  pid_t pid = 0;
  Stat stat;
  std::string cmdline;  // NULs as spaces, trailing space dropped; empty for kernel threads
  // kthreadd (pid 2) and its children, or anything flagged PF_KTHREAD.
  bool kernel_thread() const {
    return (stat.flags & detail::kPfKthread) != 0 || pid == 2 || stat.ppid == 2;
  }
  bool dead() const { return stat.state == 'Z' || stat.state == 'X'; }
};

// One process, or nullopt if it is gone (or unreadable).
inline std::optional<Process> read_process(pid_t pid) {
  auto stat_text = detail::read_text(detail::proc_path(pid, "stat"));
  if (!stat_text) return std::nullopt;
  auto stat = parse_stat(*stat_text);
  if (!stat) return std::nullopt;
  Process p;
  p.pid = pid;
  p.stat = std::move(*stat);
  p.cmdline = detail::read_text(detail::proc_path(pid, "cmdline")).value_or("");
  while (!p.cmdline.empty() && p.cmdline.back() == '\0')
    p.cmdline.pop_back();
  std::replace(p.cmdline.begin(), p.cmdline.end(), '\0', ' ');
  return p;
}

// Start time of `pid` now, or nullopt if it is gone.
inline std::optional<std::uint64_t> start_time_of(pid_t pid) {
  auto text = detail::read_text(detail::proc_path(pid, "stat"));
  auto s = text ? parse_stat(*text) : std::nullopt;
  if (!s) return std::nullopt;
  return s->start_time;
}

// True when `pid` is still the process that had `start_time`. A pid whose
// start time differs is another process that reused the number.
inline bool same_process(std::optional<std::uint64_t> current_start_time, std::uint64_t recorded) {
  return current_start_time && *current_start_time == recorded;
}

// Every numeric entry of /proc (thread-group leaders), ascending.
inline std::vector<pid_t> list_pids() {
  std::vector<pid_t> out;
  DirPtr dir(::opendir("/proc"));
  if (!dir) return out;
  while (dirent *e = ::readdir(dir.get())) {
    pid_t pid = 0;
    if (detail::parse_number(std::string_view(e->d_name), pid) && pid > 0) out.push_back(pid);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The thread group (process) a task id belongs to; nullopt if gone.
inline std::optional<pid_t> thread_group_of(pid_t tid) {
  auto text = detail::read_text(detail::proc_path(tid, "status"));
  if (!text) return std::nullopt;
  std::string_view s = *text;
  auto at = s.find("\nTgid:");
  if (at == std::string_view::npos) return std::nullopt;
  auto line = s.substr(at + 6);
  line = line.substr(0, line.find('\n'));
  auto fields = detail::split_ws(line);
  pid_t tgid = 0;
  if (fields.empty() || !detail::parse_number(fields[0], tgid)) return std::nullopt;
  return tgid;
}

// `pid`, its parent, and so on up to (and including) pid 1, in that order.
inline std::vector<pid_t> self_and_ancestors(pid_t pid) {
  std::vector<pid_t> out;
  while (pid > 0 && std::find(out.begin(), out.end(), pid) == out.end()) {
    out.push_back(pid);
    auto text = detail::read_text(detail::proc_path(pid, "stat"));
    auto s = text ? parse_stat(*text) : std::nullopt;
    if (!s) break;
    pid = s->ppid;
  }
  if (std::find(out.begin(), out.end(), 1) == out.end()) out.push_back(1);
  return out;
}

// Sends `sig` to `pid` only if it still has `start_time`: through a pidfd,
// which pins the process, so the check and the signal see the same one.
// 0 on success, ESRCH when it is gone or was replaced, else the errno.
inline int signal_if_same(pid_t pid, std::uint64_t start_time, int sig) {
  UniqueFd fd(detail::pidfd_open(pid));
  if (!fd) {
    if (errno != ENOSYS) return errno;
    // Kernels before 5.3: check then kill; the window is tiny.
    if (!same_process(start_time_of(pid), start_time)) return ESRCH;
    return ::kill(pid, sig) == 0 ? 0 : errno;
  }
  if (!same_process(start_time_of(pid), start_time)) return ESRCH;
  return detail::pidfd_send_signal(fd.get(), sig) != 0 ? errno : 0;
}

}  // namespace blade::plugins::proc
