#include "proc_table.hpp"

#include "../../common/handles.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <string>

namespace blade::os::proc {
namespace {

constexpr std::uint64_t kPfKthread = 0x00200000;

std::optional<std::string> read_text(const std::string &path) {
  plugins::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
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

std::vector<std::string_view> split_ws(std::string_view s) {
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

std::string proc_path(pid_t pid, const char *leaf) {
  return "/proc/" + std::to_string(pid) + "/" + leaf;
}

int pidfd_open(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int pidfd_send_signal(int fd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0));
}

}  // namespace

std::optional<Stat> parse_stat(std::string_view line) {
  auto open = line.find('(');
  auto close = line.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    return std::nullopt;
  Stat s;
  s.comm = std::string(line.substr(open + 1, close - open - 1));
  // Fields from 3 (state) on; field k is rest[k - 3].
  auto rest = split_ws(line.substr(close + 1));
  if (rest.size() < 20 || rest[0].size() != 1) return std::nullopt;
  s.state = rest[0][0];
  if (!parse_number(rest[1], s.ppid) || !parse_number(rest[6], s.flags) ||
      !parse_number(rest[19], s.start_time))
    return std::nullopt;
  return s;
}

bool Process::kernel_thread() const {
  return (stat.flags & kPfKthread) != 0 || pid == 2 || stat.ppid == 2;
}

std::optional<Process> read_process(pid_t pid) {
  auto stat_text = read_text(proc_path(pid, "stat"));
  if (!stat_text) return std::nullopt;
  auto stat = parse_stat(*stat_text);
  if (!stat) return std::nullopt;
  Process p;
  p.pid = pid;
  p.stat = std::move(*stat);
  p.cmdline = read_text(proc_path(pid, "cmdline")).value_or("");
  while (!p.cmdline.empty() && p.cmdline.back() == '\0')
    p.cmdline.pop_back();
  std::replace(p.cmdline.begin(), p.cmdline.end(), '\0', ' ');
  return p;
}

std::optional<std::uint64_t> start_time_of(pid_t pid) {
  auto text = read_text(proc_path(pid, "stat"));
  auto s = text ? parse_stat(*text) : std::nullopt;
  if (!s) return std::nullopt;
  return s->start_time;
}

bool same_process(std::optional<std::uint64_t> current_start_time, std::uint64_t recorded) {
  return current_start_time && *current_start_time == recorded;
}

std::vector<pid_t> list_pids() {
  std::vector<pid_t> out;
  plugins::DirPtr dir(::opendir("/proc"));
  if (!dir) return out;
  while (dirent *e = ::readdir(dir.get())) {
    pid_t pid = 0;
    if (parse_number(std::string_view(e->d_name), pid) && pid > 0) out.push_back(pid);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<pid_t> thread_group_of(pid_t tid) {
  auto text = read_text(proc_path(tid, "status"));
  if (!text) return std::nullopt;
  std::string_view s = *text;
  auto at = s.find("\nTgid:");
  if (at == std::string_view::npos) return std::nullopt;
  auto line = s.substr(at + 6);
  line = line.substr(0, line.find('\n'));
  auto fields = split_ws(line);
  pid_t tgid = 0;
  if (fields.empty() || !parse_number(fields[0], tgid)) return std::nullopt;
  return tgid;
}

std::set<std::uint64_t> listening_inodes(std::string_view text,
                                         const std::vector<plugins::IntRange> &ports) {
  constexpr std::string_view kListen = "0A";
  std::set<std::uint64_t> out;
  std::size_t pos = text.find('\n');  // skip the header line
  while (pos != std::string_view::npos && pos + 1 < text.size()) {
    auto next = text.find('\n', pos + 1);
    auto line = text.substr(pos + 1, next == std::string_view::npos ? next : next - pos - 1);
    pos = next;
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
    auto f = split_ws(line);
    if (f.size() < 10 || f[3] != kListen) continue;
    auto colon = f[1].rfind(':');
    int local_port = 0;
    std::uint64_t inode = 0;
    if (colon == std::string_view::npos || !parse_number(f[1].substr(colon + 1), local_port, 16))
      continue;
    if (!plugins::in_int_list(ports, local_port) || !parse_number(f[9], inode) || inode == 0)
      continue;
    out.insert(inode);
  }
  return out;
}

std::set<std::uint64_t> listening_inodes(const std::vector<plugins::IntRange> &ports) {
  std::set<std::uint64_t> out;
  for (const char *file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    auto text = read_text(file);
    if (!text) continue;
    auto found = listening_inodes(*text, ports);
    out.insert(found.begin(), found.end());
  }
  return out;
}

std::vector<pid_t> socket_owners(const std::set<std::uint64_t> &inodes) {
  std::vector<pid_t> out;
  if (inodes.empty()) return out;
  for (pid_t pid : list_pids()) {
    const std::string fd_dir = proc_path(pid, "fd");
    plugins::DirPtr dir(::opendir(fd_dir.c_str()));
    if (!dir) continue;
    bool owns = false;
    while (!owns) {
      dirent *e = ::readdir(dir.get());
      if (!e) break;
      if (e->d_name[0] == '.') continue;
      char target[64];
      ssize_t n = ::readlinkat(::dirfd(dir.get()), e->d_name, target, sizeof target - 1);
      if (n <= 0) continue;
      std::string_view link(target, static_cast<std::size_t>(n));
      constexpr std::string_view kPrefix = "socket:[";
      if (!link.starts_with(kPrefix) || !link.ends_with(']')) continue;
      std::uint64_t inode = 0;
      if (parse_number(link.substr(kPrefix.size(), link.size() - kPrefix.size() - 1), inode))
        owns = inodes.count(inode) > 0;
    }
    if (owns) out.push_back(pid);
  }
  return out;
}

std::vector<pid_t> self_and_ancestors(pid_t pid) {
  std::vector<pid_t> out;
  while (pid > 0 && std::find(out.begin(), out.end(), pid) == out.end()) {
    out.push_back(pid);
    auto text = read_text(proc_path(pid, "stat"));
    auto s = text ? parse_stat(*text) : std::nullopt;
    if (!s) break;
    pid = s->ppid;
  }
  if (std::find(out.begin(), out.end(), 1) == out.end()) out.push_back(1);
  return out;
}

int signal_if_same(pid_t pid, std::uint64_t start_time, int sig) {
  plugins::UniqueFd fd(pidfd_open(pid));
  if (!fd) {
    if (errno != ENOSYS) return errno;
    // Kernels before 5.3: check then kill; the window is tiny.
    if (!same_process(start_time_of(pid), start_time)) return ESRCH;
    return ::kill(pid, sig) == 0 ? 0 : errno;
  }
  if (!same_process(start_time_of(pid), start_time)) return ESRCH;
  return pidfd_send_signal(fd.get(), sig) != 0 ? errno : 0;
}

}  // namespace blade::os::proc
