// The link the netem tests and the network benchmark measure across: two
// network namespaces of one kernel joined by a veth pair, the fault on the
// sender's end. Set up with `ip` and read back with `tc` (the tests'
// scaffolding, never the code under test).
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "netns.hpp"
#include "traffic.hpp"

namespace blade::test::net {

// argv's stdout (spawned, no shell), for reading state back with `tc`;
// empty when it could not run.
inline std::string output_of(const std::vector<std::string> &argv) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return "";
  Fd read_end(p[0]), write_end(p[1]);
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
  std::vector<char *> args;
  for (const auto &a : argv)
    args.push_back(const_cast<char *>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int spawned = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  write_end.reset();
  if (spawned != 0) return "";
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(read_end.get(), buf, sizeof buf)) > 0)
    out.append(buf, static_cast<std::size_t>(n));
  int status = 0;
  ::waitpid(pid, &status, 0);
  return out;
}

constexpr const char *kSndMac = "02:b1:ad:e0:00:01";
constexpr const char *kRcvMac = "02:b1:ad:e0:00:02";

// Two namespaces and a veth between them: snd (10.77.0.1, veth-a, where
// faults go) and rcv (10.77.0.2 and 10.77.0.3 on veth-b). Fixed MACs and
// permanent neighbour entries: no ARP exchange can be lost or delayed by a
// fault and skew a count; IPv6 off where the kernel has it, so no neighbour
// discovery chatter.
struct VethLink {
  NetNs snd{"nfx-s"}, rcv{"nfx-r"};
  VethPair veth{snd, rcv, "10.77.0.1", "10.77.0.2"};
  std::string dev = "veth-a";
  std::string ip = "10.77.0.2", ip2 = "10.77.0.3";

  VethLink() {
    // (UML's kernel has no IPv6 at all; a kernel with it is told to be quiet.)
    if (::access("/proc/sys/net/ipv6", F_OK) == 0)
      for (const NetNs *ns : {&snd, &rcv})
        must({"ip", "netns", "exec", ns->name(), "sysctl", "-qw",
              "net.ipv6.conf.all.disable_ipv6=1"});
    must({"ip", "-n", snd.name(), "link", "set", "veth-a", "address", kSndMac});
    must({"ip", "-n", rcv.name(), "link", "set", "veth-b", "address", kRcvMac});
    must({"ip", "-n", rcv.name(), "addr", "add", ip2 + "/24", "dev", "veth-b"});
    for (const auto &to : {ip, ip2})
      must({"ip", "-n", snd.name(), "neigh", "replace", to, "lladdr", kRcvMac, "dev", "veth-a",
            "nud", "permanent"});
    must({"ip", "-n", rcv.name(), "neigh", "replace", "10.77.0.1", "lladdr", kSndMac, "dev",
          "veth-b", "nud", "permanent"});
  }

  // `tc qdisc ...` on veth-a, set by hand.
  void tc(std::vector<std::string> args) const {
    args.insert(args.begin(), {"tc", "-n", snd.name(), "qdisc"});
    must(args);
  }
  // What `tc` dumps of veth-a's qdiscs.
  std::string qdiscs() const {
    return output_of({"tc", "-n", snd.name(), "qdisc", "show", "dev", dev});
  }
  // True when no qdisc a fault adds is left on veth-a.
  bool clean() const {
    const std::string q = qdiscs();
    for (const char *kind : {"netem", "prio", "tbf"})
      if (q.find(kind) != std::string::npos) return false;
    return true;
  }
};

// A server of `mode` on every address of `ns`.
inline std::unique_ptr<TcpServer> server_in(const NetNs &ns,
                                            TcpServer::Mode mode = TcpServer::Mode::Echo,
                                            std::uint16_t port = 0) {
  EnterNetNs in(ns);
  return std::make_unique<TcpServer>("0.0.0.0", port, mode);
}

}  // namespace blade::test::net
