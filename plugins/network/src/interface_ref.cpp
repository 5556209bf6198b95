#include "interface_ref.hpp"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/stat.h>
#include <cstring>

#include <blade/plugin.hpp>

#include "../../common/handles.hpp"

namespace blade::network {

std::string InterfaceRef::identity() const {
  return "(netns " + std::to_string(netns) + ", ifindex " + std::to_string(ifindex) + ")";
}

std::string InterfaceRef::resource() const {
  return "interface:" + name + " " + identity();
}

std::uint64_t current_netns() {
  struct stat st {};
  if (::stat("/proc/thread-self/ns/net", &st) != 0)
    throw sdk::FailedPrecondition("cannot read this thread's network namespace");
  return st.st_ino;
}

InterfaceRef resolve_interface(std::string_view name) {
  if (name.empty()) throw sdk::InvalidArgument("interface: must name a network interface");
  // The kernel's own rule for interface names: below IFNAMSIZ, no '/', no
  // white space, not "." or "..".
  if (name.size() >= IFNAMSIZ)
    throw sdk::InvalidArgument("interface: '" + std::string(name) + "' is longer than " +
                               std::to_string(IFNAMSIZ - 1) + " characters");
  for (char c : name)
    if (c == '/' || c == ':' || static_cast<unsigned char>(c) <= ' ' || c == 0x7f)
      throw sdk::InvalidArgument("interface: '" + std::string(name) + "' is not an interface name");
  InterfaceRef ref;
  ref.name = std::string(name);
  ref.ifindex = static_cast<int>(::if_nametoindex(ref.name.c_str()));
  if (ref.ifindex == 0)
    throw sdk::InvalidArgument("interface: no interface named '" + ref.name +
                               "' in the daemon's network namespace");
  ref.netns = current_netns();
  return ref;
}

std::string interface_name(int ifindex) {
  char buf[IF_NAMESIZE] = {};
  if (ifindex <= 0 || !::if_indextoname(static_cast<unsigned>(ifindex), buf)) return "";
  return buf;
}

}  // namespace blade::network

namespace blade::network {

int interface_mtu(const std::string &name) {
  plugins::UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (!fd || ::ioctl(fd.get(), SIOCGIFMTU, &ifr) != 0 || ifr.ifr_mtu <= 0) return 1500;
  return ifr.ifr_mtu;
}

}  // namespace blade::network
