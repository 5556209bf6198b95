// The socket `network occupy` holds a port with: one TCP listener on every
// address, IPv4 and IPv6 alike: [::] with IPV6_V6ONLY off (dual stack), or
// 0.0.0.0 alone where the kernel has no IPv6. SO_REUSEADDR (as every
// ordinary server sets it) lets it bind over TIME_WAIT leftovers of a
// holder just stopped; no SO_REUSEPORT, so no one else can bind beside it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../../common/handles.hpp"

namespace blade::network {

struct PortListener {
  plugins::UniqueFd fd;
  std::vector<std::string> addresses;  // "0.0.0.0", "::"
  unsigned long inode = 0;             // as /proc/net/tcp6 shows it
};

// Binds and listens on `port` everywhere. 0 with `out` filled, or the errno
// of the step that failed (EADDRINUSE: someone holds the port).
int listen_everywhere(std::uint16_t port, PortListener &out);

// The inode of the calling thread's network namespace (/proc/thread-self/ns/net),
// 0 when it cannot be read: what tells one namespace's port 80 from another's.
unsigned long netns_inode();

}  // namespace blade::network
