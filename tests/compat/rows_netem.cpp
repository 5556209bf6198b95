// The network rows that need sch_netem (delay, loss, duplicate, corrupt,
// reorder), which the test machine's kernel lacks: they run in a user-mode
// Linux guest that has it (Where::netem_guest), in a NetworkWorld built
// there. Delay is measured by timed TCP connects across the veth, the others
// by bursts of numbered UDP datagrams counted at the far end
// (tests/network/traffic.hpp); each reads `tc` back, a netem qdisc on eth0
// while the fault is on and none of the fault's qdiscs after destroy, when
// the same traffic must pass untouched again.
#include <chrono>
#include <memory>
#include <optional>
#include <sstream>

#include "network_rows.hpp"

namespace blade::test::compat {
namespace {

using namespace std::chrono_literals;
using namespace probe;

std::string ms_text(std::optional<double> ms) {
  if (!ms) return "no answer";
  std::ostringstream s;
  s.precision(0);
  s << std::fixed << *ms << " ms";
  return s.str();
}

// What `tc` shows of eth0's qdiscs, on one line.
std::string eth0_qdiscs() {
  std::string out = output_of({"/usr/sbin/tc", "qdisc", "show", "dev", "eth0"});
  for (auto &c : out)
    if (c == '\n') c = ';';
  return out;
}

bool no_fault_qdisc(const std::string &qdiscs) {
  for (const char *kind : {"netem", "prio", "tbf"})
    if (qdiscs.find(kind) != std::string::npos) return false;
  return true;
}

// A netem row: `effect` measures the fault; `normal` measures the same
// traffic as it is without one, which must hold again after destroy, with no
// qdisc of the fault left on eth0.
Fixture netem_fixture(std::vector<std::string> words, std::string substituted,
                      std::shared_ptr<Listeners> listeners, std::function<Outcome()> effect,
                      std::function<Outcome()> normal) {
  Fixture fx;
  fx.words = std::move(words);
  fx.substituted = std::move(substituted);
  fx.effect = [effect, listeners](const std::string &) {
    Outcome o = effect();
    const std::string q = eth0_qdiscs();
    o.ok = o.ok && q.find("netem") != std::string::npos;
    o.what += "; tc: " + q;
    return o;
  };
  fx.clean = [normal, listeners](const std::string &) {
    Outcome o = normal();
    const std::string q = eth0_qdiscs();
    o.ok = o.ok && no_fault_qdisc(q);
    o.what += "; tc: " + q;
    return o;
  };
  return fx;
}

// A TCP connect from the peer to the host's port `port` (whose answer leaves
// from that local port), timed.
std::optional<double> connect_from_peer(std::uint16_t port, std::chrono::milliseconds timeout) {
  AtPeer at;
  return connect_ms(NetworkWorld::kHostIp, port, timeout);
}

// Within [low, high] ms.
bool within(std::optional<double> ms, double low, double high) {
  return ms && *ms >= low && *ms <= high;
}

const std::string kFarSubstitute =
    "10.78.0.39 (an address of the veth's far end) for 14.215.177.39";
const std::string kFar12Substitute =
    "10.78.0.12 (an address of the veth's far end) for 180.101.49.12";

Fixture delay_local_ports(std::vector<std::string> words) {
  auto l = std::make_shared<Listeners>();
  l->at_host(NetworkWorld::kHostIp, 8080);
  l->at_host(NetworkWorld::kHostIp, 9000);
  return netem_fixture(
      std::move(words), "", l,
      [] {
        const auto hit = connect_from_peer(8080, 6000ms), other = connect_from_peer(9000, 6000ms);
        return Outcome{
            within(hit, 1900, 4600) && within(other, 0, 500),
            "connect to local port 8080 took " + ms_text(hit) + ", to 9000 " + ms_text(other)};
      },
      [] {
        const auto t = connect_from_peer(8080, 6000ms);
        return Outcome{within(t, 0, 500), "connect to local port 8080 took " + ms_text(t)};
      });
}

Fixture delay_remote_port_ip(std::vector<std::string> words) {
  auto l = std::make_shared<Listeners>();
  l->at_peer("0.0.0.0", 80);
  l->at_peer("0.0.0.0", 9000);
  return netem_fixture(
      replaced(words, "14.215.177.39", "10.78.0.39"), kFarSubstitute, l,
      [] {
        const auto hit = connect_ms("10.78.0.39", 80, 6000ms),
                   port = connect_ms("10.78.0.39", 9000, 6000ms),
                   ip = connect_ms(NetworkWorld::kPeerIp, 80, 6000ms);
        return Outcome{within(hit, 2900, 3600) && within(port, 0, 500) && within(ip, 0, 500),
                       "connect to 10.78.0.39:80 took " + ms_text(hit) + ", to 10.78.0.39:9000 " +
                           ms_text(port) + ", to 10.78.0.2:80 " + ms_text(ip)};
      },
      [] {
        const auto t = connect_ms("10.78.0.39", 80, 6000ms);
        return Outcome{within(t, 0, 500), "connect to 10.78.0.39:80 took " + ms_text(t)};
      });
}

Fixture delay_exclude_ports(std::vector<std::string> words) {
  auto l = std::make_shared<Listeners>();
  l->at_peer(NetworkWorld::kPeerIp, 8080);
  l->at_peer(NetworkWorld::kPeerIp, 9000);
  return netem_fixture(
      std::move(words), "", l,
      [] {
        const auto hit = connect_ms(NetworkWorld::kPeerIp, 9000, 8000ms),
                   spared = connect_ms(NetworkWorld::kPeerIp, 8080, 8000ms);
        return Outcome{
            within(hit, 4900, 5600) && within(spared, 0, 500),
            "connect to port 9000 took " + ms_text(hit) + ", to excluded 8080 " + ms_text(spared)};
      },
      [] {
        const auto t = connect_ms(NetworkWorld::kPeerIp, 9000, 8000ms);
        return Outcome{within(t, 0, 500), "connect to port 9000 took " + ms_text(t)};
      });
}

// What arrived of a burst, in words.
std::string shown(const net::UdpTally &t) {
  return std::to_string(t.distinct) + "/" + std::to_string(t.sent) + " arrived, " +
         std::to_string(t.duplicates) + " duplicated, " + std::to_string(t.late) + " overtaken, " +
         std::to_string(t.damaged) + " damaged";
}

// `count` numbered datagrams of `size` bytes from the host (from local port
// `from_port`) to the peer's ip:port, one every `gap`, and what arrived
// once nothing did for `quiet`.
net::UdpTally burst(const std::string &ip, std::uint16_t port, int count,
                    std::uint16_t from_port = 0, std::chrono::microseconds gap = 200us,
                    std::chrono::milliseconds quiet = 400ms, std::size_t size = 64) {
  std::unique_ptr<net::UdpReceiver> r;
  {
    AtPeer at;
    r = std::make_unique<net::UdpReceiver>(ip, port);
  }
  const int sent = net::send_udp(ip, port, count, gap, size, 0, from_port);
  return r->collect(sent, quiet);
}

// `t` arrived whole, once each and in order.
bool untouched(const net::UdpTally &t) {
  return t.distinct == t.sent && t.duplicates == 0 && t.late == 0 && t.damaged == 0;
}

// Where a count of `n` draws of chance `p` falls but once in 10,000 runs:
// wide enough that a row is not flaky, narrow enough that a wrong percent
// (60 for 70 over 500 draws) falls outside.
std::pair<int, int> bounds(int n, double p) {
  return net::binomial_bounds(n, p, 0.9999);
}

// Arrived: its share `p` of `t.sent` within the bounds.
std::pair<bool, std::string> arrived_share(const net::UdpTally &t, double p) {
  const auto [low, high] = bounds(t.sent, p);
  return {t.distinct >= low && t.distinct <= high,
          shown(t) + " (expected " + std::to_string(low) + "-" + std::to_string(high) + ")"};
}

Fixture udp_fixture(std::vector<std::string> words, std::string substituted,
                    std::function<Outcome()> effect, std::string ip, std::uint16_t port) {
  return netem_fixture(
      std::move(words), std::move(substituted), nullptr, std::move(effect), [ip, port] {
        const net::UdpTally t = burst(ip, port, 200);
        return Outcome{untouched(t), "to " + ip + ":" + std::to_string(port) + ": " + shown(t)};
      });
}

Fixture loss_local_ports(std::vector<std::string> words) {
  return udp_fixture(
      std::move(words), "",
      [] {
        const auto [ok, seen] = arrived_share(burst(NetworkWorld::kPeerIp, 9000, 500, 8080), 0.3);
        const net::UdpTally other = burst(NetworkWorld::kPeerIp, 9000, 200, 9001);
        return Outcome{ok && untouched(other),
                       "from local port 8080: " + seen + "; from 9001: " + shown(other)};
      },
      NetworkWorld::kPeerIp, 9000);
}

}  // namespace

Fixture loss_remote_port_ip(std::vector<std::string> words) {
  return udp_fixture(
      replaced(words, "14.215.177.39", "10.78.0.39"), kFarSubstitute,
      [] {
        const net::UdpTally hit = burst("10.78.0.39", 80, 200),
                            port = burst("10.78.0.39", 9000, 200),
                            ip = burst(NetworkWorld::kPeerIp, 80, 200);
        return Outcome{hit.distinct == 0 && untouched(port) && untouched(ip),
                       "to 10.78.0.39:80: " + shown(hit) + "; to 10.78.0.39:9000: " + shown(port) +
                           "; to 10.78.0.2:80: " + shown(ip)};
      },
      "10.78.0.39", 80);
}

namespace {

Fixture loss_exclude_ports(std::vector<std::string> words) {
  return udp_fixture(
      std::move(words), "",
      [] {
        const auto [ok, seen] = arrived_share(burst(NetworkWorld::kPeerIp, 9000, 500), 0.4);
        const net::UdpTally spared = burst(NetworkWorld::kPeerIp, 8080, 200);
        return Outcome{ok && untouched(spared),
                       "to port 9000: " + seen + "; to excluded 8080: " + shown(spared)};
      },
      NetworkWorld::kPeerIp, 9000);
}

Fixture loss_all(std::vector<std::string> words) {
  return udp_fixture(
      std::move(words), "as written; destroyed by the row before the 20 s timeout",
      [] {
        const net::UdpTally t = burst(NetworkWorld::kPeerIp, 9000, 200);
        return Outcome{t.distinct == 0, "to 10.78.0.2:9000: " + shown(t)};
      },
      NetworkWorld::kPeerIp, 9000);
}

Fixture duplicate_all(std::vector<std::string> words) {
  return udp_fixture(
      std::move(words), "",
      [] {
        const net::UdpTally t = burst(NetworkWorld::kPeerIp, 9000, 1000);
        const auto [low, high] = bounds(t.sent, 0.1);
        return Outcome{t.distinct == t.sent && t.duplicates >= low && t.duplicates <= high,
                       shown(t) + " (duplicates expected " + std::to_string(low) + "-" +
                           std::to_string(high) + ")"};
      },
      NetworkWorld::kPeerIp, 9000);
}

Fixture corrupt_destination(std::vector<std::string> words) {
  return udp_fixture(
      replaced(words, "180.101.49.12", "10.78.0.12"), kFar12Substitute,
      [] {
        // 1000-byte datagrams: the few header bits a flip leaves unnoticed
        // (the source MAC) are under 1% of the packet, so ~20% arrive intact.
        const auto [ok, seen] =
            arrived_share(burst("10.78.0.12", 9000, 500, 0, 200us, 400ms, 1000), 0.2);
        const net::UdpTally other = burst(NetworkWorld::kPeerIp, 9000, 200, 0, 200us, 400ms, 1000);
        return Outcome{ok && untouched(other),
                       "to 10.78.0.12: " + seen + "; to 10.78.0.2: " + shown(other)};
      },
      "10.78.0.12", 9000);
}

Fixture reorder_destination(std::vector<std::string> words) {
  return udp_fixture(
      replaced(words, "180.101.49.12", "10.78.0.12"), kFar12Substitute,
      [] {
        // 20 ms apart: a packet held 500 ms is overtaken by those sent at once.
        const net::UdpTally hit = burst("10.78.0.12", 9000, 40, 0, 20ms, 1000ms);
        const net::UdpTally other = burst(NetworkWorld::kPeerIp, 9000, 40, 0, 20ms, 1000ms);
        return Outcome{hit.distinct == hit.sent && hit.late > 0 && untouched(other),
                       "to 10.78.0.12: " + shown(hit) + "; to 10.78.0.2: " + shown(other)};
      },
      "10.78.0.12", 9000);
}

}  // namespace

std::vector<Row> netem_rows() {
  const Where guest = Where::netem_guest;
  return {
      network_row(
          "blade create network delay --time 3000 --offset 1000 --interface eth0 --local-port "
          "8080,8081",
          delay_local_ports, guest),
      network_row("blade create network delay --time 3000 --interface eth0 --remote-port 80 "
                  "--destination-ip 14.215.177.39",
                  delay_remote_port_ip, guest),
      network_row(
          "blade create network delay --time 5000 --interface eth0 --exclude-port 22,8000-8080",
          delay_exclude_ports, guest),
      network_row("blade create network loss --percent 70 --interface eth0 --local-port 8080,8081",
                  loss_local_ports, guest),
      network_row("blade create network loss --percent 100 --interface eth0 --remote-port 80 "
                  "--destination-ip 14.215.177.39",
                  loss_remote_port_ip, guest),
      network_row(
          "blade create network loss --percent 60 --interface eth0 --exclude-port 22,8000-8080",
          loss_exclude_ports, guest),
      network_row("blade create network loss --percent 100 --interface eth0 --timeout 20", loss_all,
                  guest),
      network_row("blade create network duplicate --percent=10 --interface=eth0", duplicate_all,
                  guest),
      network_row("blade create network corrupt --percent 80 --destination-ip 180.101.49.12 "
                  "--interface eth0",
                  corrupt_destination, guest),
      network_row("blade c network reorder --correlation 80 --percent 50 --gap 2 --time 500 "
                  "--interface eth0 --destination-ip 180.101.49.12",
                  reorder_destination, guest),
  };
}

}  // namespace blade::test::compat
