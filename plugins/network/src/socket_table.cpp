#include "socket_table.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "../../common/handles.hpp"

namespace blade::network {
namespace {

// The tables print each address as the hex of its 32-bit words in host
// order ("0100007F:1F90" is 127.0.0.1:8080 on little-endian).
bool parse_address(const std::string &text, int family, std::array<std::uint8_t, 16> &addr,
                   std::uint16_t &port) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) return false;
  const std::string hex = text.substr(0, colon);
  const std::size_t words = family == AF_INET ? 1 : 4;
  if (hex.size() != words * 8) return false;
  for (std::size_t w = 0; w < words; ++w) {
    const std::uint32_t word =
        static_cast<std::uint32_t>(std::strtoul(hex.substr(w * 8, 8).c_str(), nullptr, 16));
    std::memcpy(addr.data() + w * 4, &word, 4);  // host order, as the kernel printed it
  }
  port = static_cast<std::uint16_t>(std::strtoul(text.substr(colon + 1).c_str(), nullptr, 16));
  return true;
}

}  // namespace

std::vector<SocketEntry> read_socket_table(const std::string &path) {
  std::vector<SocketEntry> out;
  std::ifstream in(path);
  if (!in) return out;
  const int family = path.size() > 1 && path.back() == '6' ? AF_INET6 : AF_INET;
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout;
    unsigned long inode = 0;
    if (!(fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode))
      continue;
    SocketEntry e;
    e.family = family;
    if (!parse_address(local, family, e.local, e.local_port) ||
        !parse_address(remote, family, e.remote, e.remote_port))
      continue;
    e.state = static_cast<int>(std::strtol(state.c_str(), nullptr, 16));
    e.inode = inode;
    out.push_back(e);
  }
  return out;
}

std::vector<SocketEntry> tcp_sockets(pid_t pid) {
  const std::string base = "/proc/" + std::to_string(pid) + "/net/";
  auto out = read_socket_table(base + "tcp");
  auto v6 = read_socket_table(base + "tcp6");
  out.insert(out.end(), v6.begin(), v6.end());
  return out;
}

std::vector<SocketEntry> udp_sockets(pid_t pid) {
  const std::string base = "/proc/" + std::to_string(pid) + "/net/";
  auto out = read_socket_table(base + "udp");
  auto v6 = read_socket_table(base + "udp6");
  out.insert(out.end(), v6.begin(), v6.end());
  return out;
}

std::set<unsigned long> socket_inodes_of(pid_t pid) {
  std::set<unsigned long> out;
  if (pid == ::getpid()) {
    // This process (the daemon the plugin is loaded into): an fstat of each
    // descriptor, instead of resolving a /proc link per descriptor, which
    // costs a path walk each. A socket's inode is the one its link names.
    plugins::DirPtr d(::opendir("/proc/self/fd"));
    if (!d) return out;
    const int own = ::dirfd(d.get());
    while (const dirent *e = ::readdir(d.get())) {
      char *end = nullptr;
      const long fd = std::strtol(e->d_name, &end, 10);
      if (end == e->d_name || *end != '\0' || fd == own) continue;
      struct stat st {};
      if (::fstat(static_cast<int>(fd), &st) == 0 && S_ISSOCK(st.st_mode)) out.insert(st.st_ino);
    }
    return out;
  }
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  plugins::DirPtr d(::opendir(dir.c_str()));
  if (!d) return out;
  char target[64];
  while (const dirent *e = ::readdir(d.get())) {
    if (e->d_name[0] == '.') continue;
    const std::string link = dir + "/" + e->d_name;
    const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    unsigned long inode = 0;
    if (std::sscanf(target, "socket:[%lu]", &inode) == 1) out.insert(inode);
  }
  return out;
}

std::vector<pid_t> holders_of(const std::set<unsigned long> &inodes) {
  std::vector<pid_t> out;
  if (inodes.empty()) return out;
  plugins::DirPtr proc(::opendir("/proc"));
  if (!proc) return out;
  while (const dirent *e = ::readdir(proc.get())) {
    char *end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    for (unsigned long inode : socket_inodes_of(static_cast<pid_t>(pid))) {
      if (inodes.count(inode)) {
        out.push_back(static_cast<pid_t>(pid));
        break;
      }
    }
  }
  return out;
}

}  // namespace blade::network
