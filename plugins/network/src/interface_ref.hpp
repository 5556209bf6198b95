// The interface a netem-family fault is aimed at, named so that it stays
// one resource whatever reads it: its network namespace (the inode of
// /proc/thread-self/ns/net) and its ifindex, with the name for people. The
// namespace is part of the name because a fault may later be aimed at an
// interface in a container's namespace, where eth0 is another eth0.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace blade::network {

struct InterfaceRef {
  std::string name;
  int ifindex = 0;
  std::uint64_t netns = 0;

  // "interface:<name> (netns <inode>, ifindex <n>)", the claim's resource.
  std::string resource() const;
  // The part of resource() that identifies it (a renamed interface is the
  // same one): "(netns <inode>, ifindex <n>)".
  std::string identity() const;
};

// The calling thread's network namespace inode.
std::uint64_t current_netns();

// The interface named by the `interface` flag in the calling thread's
// namespace; sdk::InvalidArgument("interface: ...") for a malformed or
// unknown name.
InterfaceRef resolve_interface(std::string_view name);

// The interface's MTU, 1500 when it cannot be read.
int interface_mtu(const std::string &name);

// The name `ifindex` has now, empty when there is no such interface.
std::string interface_name(int ifindex);

}  // namespace blade::network
