// Where the network rows run: a network namespace of the test's own ("the
// host" of the examples) whose `eth0` is one end of a veth pair, the other
// end in a second namespace ("the rest of the network"), and a bladed with
// the network plugin born inside the first. The calling thread stays inside
// it while the world lives, so the blade CLI it starts, the servers and the
// clients it opens are the namespace's: no row touches the test machine's
// own interfaces, qdiscs, firewall or ports. Before the daemon starts, the
// calling thread moves into a private mount namespace (for good: it is not
// undone when the world goes), so the /etc files the dns row mounts over are
// seen by it and its bladed only, never by the machine.
//
// Addresses: eth0 has 10.78.0.1 and 10.78.0.100 (a second local address, for
// a drop by destination); the peer has 10.78.0.2 and the stand-ins for the
// examples' outside hosts, 10.78.0.10, .12 and .39 (the examples'
// 10.10.10.10, 180.101.49.12 and 14.215.177.39 keep their last number).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>

#include "../cli/blade_run.hpp"
#include "../network/dns_test_support.hpp"
#include "../network/netns.hpp"
#include "bladed_process.hpp"
#include "example_row.hpp"
#include "experiment_calls.hpp"

namespace blade::test::compat {

struct NetworkWorld {
  static constexpr const char *kHostIp = "10.78.0.1";
  static constexpr const char *kHostIp2 = "10.78.0.100";
  static constexpr const char *kPeerIp = "10.78.0.2";

  net::NetNs host{"cnet"};
  net::NetNs peer{"cpeer"};
  net::VethPair veth{host, peer, kHostIp, kPeerIp, "eth0", "peer0"};

  NetworkWorld() {
    // Before the daemon starts, so it shares the mount namespace in which
    // the dns row puts /etc files of the run's own.
    dns::private_mounts();
    const std::string host_mac = "02:b1:ad:c0:00:01", peer_mac = "02:b1:ad:c0:00:02";
    net::must({"ip", "-n", host.name(), "link", "set", "eth0", "address", host_mac});
    net::must({"ip", "-n", peer.name(), "link", "set", "peer0", "address", peer_mac});
    net::must(
        {"ip", "-n", host.name(), "addr", "add", std::string(kHostIp2) + "/24", "dev", "eth0"});
    // Permanent neighbours both ways: no ARP exchange a delay or loss row
    // hits can skew what it measures.
    for (const char *ip : {kPeerIp, "10.78.0.10", "10.78.0.12", "10.78.0.39"}) {
      if (std::string(ip) != kPeerIp)
        net::must(
            {"ip", "-n", peer.name(), "addr", "add", std::string(ip) + "/24", "dev", "peer0"});
      net::must({"ip", "-n", host.name(), "neigh", "replace", ip, "lladdr", peer_mac, "dev", "eth0",
                 "nud", "permanent"});
    }
    for (const char *ip : {kHostIp, kHostIp2})
      net::must({"ip", "-n", peer.name(), "neigh", "replace", ip, "lladdr", host_mac, "dev",
                 "peer0", "nud", "permanent"});
    current_ = this;
  }
  ~NetworkWorld() { current_ = nullptr; }
  NetworkWorld(const NetworkWorld &) = delete;
  NetworkWorld &operator=(const NetworkWorld &) = delete;

  // The world the network rows run in; throws outside one (a row run by a
  // case that did not make it).
  static NetworkWorld &current() {
    if (!current_) throw std::runtime_error("the network rows run only inside a NetworkWorld");
    return *current_;
  }

 private:
  static inline NetworkWorld *current_ = nullptr;
};

// The world, this thread inside its host namespace, and a bladed with only
// network.so born there with the CLI talking to it. Built in this order and
// torn down in the reverse: the daemon dies before the thread leaves.
struct NetworkDaemon {
  NetworkWorld world;
  net::EnterNetNs inside{world.host};
  BladedProcess process{only_plugin(std::filesystem::path(BLADE_BUILT_PLUGIN_DIR) / "network.so")};
  BladeRunner blade{{"BLADE_ENDPOINT=" + process.url(), "BLADE_API_TOKEN=" + kToken}};
  Env env{process, blade};
};

}  // namespace blade::test::compat
