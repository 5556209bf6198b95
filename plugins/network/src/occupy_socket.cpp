#include "occupy_socket.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace blade::network {
namespace {

// Connections to the occupied port are completed by the kernel into this
// backlog and never answered, as with a server that hangs: the port is
// taken, not refused.
constexpr int kBacklog = 16;

int listen_on(int family, std::uint16_t port, PortListener &out) {
  plugins::UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return errno;
  const int on = 1;
  const int off = 0;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) return errno;
  int rc = 0;
  if (family == AF_INET6) {
    // Off whatever net.ipv6.bindv6only says, so [::] takes IPv4 too.
    if (::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) return errno;
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    a.sin6_addr = in6addr_any;
    rc = ::bind(fd.get(), reinterpret_cast<const sockaddr *>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    rc = ::bind(fd.get(), reinterpret_cast<const sockaddr *>(&a), sizeof a);
  }
  if (rc != 0 || ::listen(fd.get(), kBacklog) != 0) return errno;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno;
  out.fd = std::move(fd);
  out.inode = static_cast<unsigned long>(st.st_ino);
  out.addresses = family == AF_INET6 ? std::vector<std::string>{"0.0.0.0", "::"}
                                     : std::vector<std::string>{"0.0.0.0"};
  return 0;
}

}  // namespace

int listen_everywhere(std::uint16_t port, PortListener &out) {
  const int err = listen_on(AF_INET6, port, out);
  // A kernel without IPv6 (ipv6.disable=1): IPv4 is every address there is.
  if (err == EAFNOSUPPORT) return listen_on(AF_INET, port, out);
  return err;
}

unsigned long netns_inode() {
  struct stat st {};
  if (::stat("/proc/thread-self/ns/net", &st) != 0) return 0;
  return static_cast<unsigned long>(st.st_ino);
}

}  // namespace blade::network
