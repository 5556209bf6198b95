#include "proc_table.hpp"

#include "../../common/handles.hpp"

#include <dirent.h>
#include <unistd.h>

#include <string>

namespace blade::os::proc {

using plugins::proc::detail::parse_number;
using plugins::proc::detail::proc_path;
using plugins::proc::detail::read_text;
using plugins::proc::detail::split_ws;

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

}  // namespace blade::os::proc
