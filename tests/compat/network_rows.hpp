// What the network rows (rows_network.cpp, rows_netem.cpp) share: the
// world's far end entered for a while, listeners kept for a row's length,
// the examples' addresses swapped for stand-ins, and the netem rows.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "command_words.hpp"
#include "example_row.hpp"
#include "network_probes.hpp"
#include "network_world.hpp"

namespace blade::test::compat {

// The calling thread inside the world's peer namespace while this lives:
// what it opens is the far end's.
struct AtPeer {
  net::EnterNetNs in{NetworkWorld::current().peer};
};

// Listeners on the host's and the peer's side that the paths connect to,
// held (by shared_ptr) by the row's checks until the row is done.
struct Listeners {
  std::vector<probe::Fd> sockets;
  void at_host(const std::string &ip, std::uint16_t port) {
    sockets.push_back(probe::listener(ip, port));
  }
  void at_peer(const std::string &ip, std::uint16_t port) {
    AtPeer at;
    sockets.push_back(probe::listener(ip, port));
  }
};

// `words` with every `from` (an outside address of the example) as `to`.
inline std::vector<std::string> replaced(std::vector<std::string> words, const std::string &from,
                                         const std::string &to) {
  for (auto &w : words)
    if (w == from) w = to;
  return words;
}

// A row of the network target made from its example's words.
inline Row network_row(std::string example, std::function<Fixture(std::vector<std::string>)> make,
                       Where where) {
  return {"network", example, [example, make](Env &) { return make(command_words(example)); },
          where};
}

// The delay, loss, duplicate, corrupt and reorder rows, in the table's order
// (rows_netem.cpp), and the loss fixture a second line of the table repeats.
std::vector<Row> netem_rows();
Fixture loss_remote_port_ip(std::vector<std::string> words);

}  // namespace blade::test::compat
