// The network plugin's parsing of ChaosBlade's port and ip lists, and the
// control path read from this process's own sockets.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include <doctest/doctest.h>

#include "../../plugins/network/src/control_path.hpp"
#include "../../plugins/network/src/net_selectors.hpp"

using namespace blade::network;

TEST_CASE("ports: lists and ranges, and a bad element named with its flag") {
  auto p = parse_ports("local-port", "80, 8000-8010,443");
  REQUIRE(p.size() == 3);
  CHECK(p[0] == PortRange{80, 80});
  CHECK(p[1] == PortRange{8000, 8010});
  CHECK(p[1].text() == "8000-8010");
  for (const char *bad : {"0", "65536", "80,", "9-8", "http", "1-2-3", "-5"}) {
    INFO(bad);
    try {
      parse_ports("remote-port", bad);
      FAIL("accepted");
    } catch (const blade::sdk::InvalidArgument &e) {
      CHECK(std::string(e.what()).rfind("remote-port: ", 0) == 0);
    }
  }
}

TEST_CASE("port ranges become exact u32 value/mask blocks") {
  const auto m = port_masks({8000, 8010});
  REQUIRE(m.size() == 3);
  CHECK(m[0] == std::pair<std::uint16_t, std::uint16_t>{8000, 0xfff8});
  CHECK(m[1] == std::pair<std::uint16_t, std::uint16_t>{8008, 0xfffe});
  CHECK(m[2] == std::pair<std::uint16_t, std::uint16_t>{8010, 0xffff});
  // Every port of 1-65535 is covered exactly once, none outside.
  for (PortRange r : {PortRange{1, 65535}, PortRange{22, 22}, PortRange{1023, 1025},
                      PortRange{65535, 65535}}) {
    int covered = 0;
    for (auto [value, mask] : port_masks(r)) {
      CHECK((value & ~mask) == 0);
      covered += 0x10000 - mask;  // ports in the block
      CHECK(value >= r.first);
      CHECK(value + (0xFFFF & ~mask) <= r.last);
    }
    CHECK(covered == r.last - r.first + 1);
  }
}

TEST_CASE("ips: addresses and CIDRs of both families, host bits cleared") {
  auto ips = parse_ips("destination-ip", "10.1.2.3/8,192.168.0.7,fd00::1/16");
  REQUIRE(ips.size() == 3);
  CHECK(ips[0].family == AF_INET);
  CHECK(ips[0].text() == "10.0.0.0/8");
  CHECK(ips[1].text() == "192.168.0.7");
  CHECK(ips[2].family == AF_INET6);
  CHECK(ips[2].text() == "fd00::/16");
  for (const char *bad : {"10.0.0.0/33", "300.1.1.1", "10.0.0.1,", "::1/129", "host"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_ips("exclude-ip", bad), blade::sdk::InvalidArgument);
  }
}

TEST_CASE("the control path: this process's listener and SSH") {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd, 1) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
  const std::uint16_t port = ntohs(a.sin_port);
  const ControlPath path = control_path(::getpid());
  auto has = [&](std::uint16_t p) {
    return std::find(path.local_ports.begin(), path.local_ports.end(), p) !=
           path.local_ports.end();
  };
  CHECK(has(port));
  CHECK(has(22));
  CHECK(path.remote_ports == std::vector<std::uint16_t>{22});
  CHECK(path.excluded.dump().find(std::to_string(port)) != std::string::npos);
  ::close(fd);
  CHECK_FALSE([&] {
    const ControlPath after = control_path(::getpid());
    return std::find(after.local_ports.begin(), after.local_ports.end(), port) !=
           after.local_ports.end();
  }());
}
