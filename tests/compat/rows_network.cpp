// network rows. Every one runs in a NetworkWorld (network_world.hpp): a
// network namespace of the run's own whose `eth0` is a veth to a second
// namespace, with a bladed of the network plugin born inside, so `--interface
// eth0` and ports like 8080 and 80 are the namespace's, never the test
// machine's. The examples' outside addresses become addresses of the veth's
// far end (10.78.0.x, keeping their last number), and each effect is measured
// on real traffic across the veth:
// - occupy: a process holding 8080 is stopped and bind() fails with
//   EADDRINUSE, then binds again after destroy;
// - drop: TCP connects (or UDP datagrams, for a payload pattern) matching
//   the rule do not get through while others do; after destroy all do and
//   the namespace has no nftables table left;
// - dns: getaddrinfo of www.baidu.com answers the example's ip, through a
//   private /etc/hosts in a private mount namespace and a DNS server of the
//   run's own on the namespace's loopback, then the server's answer again;
// - delay, loss, duplicate, corrupt, reorder need sch_netem, which the test
//   machine's kernel lacks: they run in a user-mode Linux guest with it
//   (Where::netem_guest), timed TCP connects and counted UDP datagrams across
//   the veth, and after destroy `tc` shows no qdisc of theirs on eth0.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <sstream>
#include <thread>

#include "../network/dns_test_support.hpp"
#include "../support/eventually.hpp"
#include "command_words.hpp"
#include "example_row.hpp"
#include "network_probes.hpp"
#include "network_world.hpp"

namespace blade::test::compat {
namespace {

using namespace std::chrono_literals;
using namespace probe;

// The calling thread inside the world's peer namespace while this lives:
// what it opens is the far end's.
struct AtPeer {
  net::EnterNetNs in{NetworkWorld::current().peer};
};

std::string ms_text(std::optional<double> ms) {
  if (!ms) return "no answer";
  std::ostringstream s;
  s.precision(0);
  s << std::fixed << *ms << " ms";
  return s.str();
}

Row row(std::string target, std::string example,
        std::function<Fixture(std::vector<std::string>)> make, Where where) {
  return {std::move(target), example,
          [example, make](Env &) { return make(command_words(example)); }, where};
}

// ---- occupy ----

// A /bin/sleep holding a listening TCP socket on 0.0.0.0:port that it
// inherited: a process of its own that `--force` has to stop.
class PortHolder {
 public:
  explicit PortHolder(std::uint16_t port) {
    Fd s = listener("0.0.0.0", port);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::fcntl(s.get(), F_SETFD, 0);  // kept across exec
      ::execl("/bin/sleep", "sleep", "300", static_cast<char *>(nullptr));
      ::_exit(127);
    }
    if (!eventually([&] { return read_text("/proc/" + std::to_string(pid_) + "/comm") == "sleep\n"; },
                    5s))
      throw std::runtime_error("the port holder did not start");
  }
  ~PortHolder() {
    if (!status_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  PortHolder(const PortHolder &) = delete;
  PortHolder &operator=(const PortHolder &) = delete;

  pid_t pid() const { return pid_; }
  // The signal that ended it (waiting up to `timeout`), 0 while it runs.
  int ended_by(std::chrono::milliseconds timeout) {
    eventually(
        [&] {
          int st = 0;
          if (!status_ && ::waitpid(pid_, &st, WNOHANG) == pid_) status_ = st;
          return status_.has_value();
        },
        timeout);
    return status_ && WIFSIGNALED(*status_) ? WTERMSIG(*status_) : 0;
  }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

Fixture occupy_force(std::vector<std::string> words) {
  auto holder = std::make_shared<PortHolder>(8080);
  Fixture fx;
  fx.words = std::move(words);
  fx.substituted = "as written; 8080 is a port of the run's own network namespace, held by a "
                   "/bin/sleep (pid " + std::to_string(holder->pid()) +
                   ") the run started with a listening socket";
  fx.effect = [holder](const std::string &) {
    const int signal = holder->ended_by(5s);
    const int err = bind_errno(8080);
    return Outcome{(signal == SIGTERM || signal == SIGKILL) && err == EADDRINUSE,
                   "the holder " + (signal ? "ended by " + std::string(::strsignal(signal))
                                           : std::string("still runs")) +
                       ", bind(8080): " + (err ? std::strerror(err) : "succeeded")};
  };
  fx.clean = [](const std::string &) {
    int err = -1;
    const bool ok = eventually([&] { return (err = bind_errno(8080)) == 0; }, 5s);
    return Outcome{ok, std::string("bind(8080): ") + (err ? std::strerror(err) : "succeeded")};
  };
  return fx;
}

// ---- what the rows set up ----

// Listeners on the host's and the peer's side that the paths connect to,
// held (by shared_ptr) by the row's checks until the row is done.
struct Listeners {
  std::vector<Fd> sockets;
  void at_host(const std::string &ip, std::uint16_t port) { sockets.push_back(listener(ip, port)); }
  void at_peer(const std::string &ip, std::uint16_t port) {
    AtPeer at;
    sockets.push_back(listener(ip, port));
  }
};

std::vector<std::string> replaced(std::vector<std::string> words, const std::string &from,
                                  const std::string &to) {
  for (auto &w : words)
    if (w == from) w = to;
  return words;
}

// ---- drop ----

// One way across the veth, and whether it got through.
struct Path {
  std::string what;
  std::function<bool()> gets_through;
};

// A TCP connect from the peer (from_ip, from_port when given) to ip:port of
// the world's host, where a listener waits.
Path connect_in(std::string ip, std::uint16_t port, std::string from_ip = "",
                std::uint16_t from_port = 0) {
  std::string what = "connect " + (from_ip.empty() ? std::string(NetworkWorld::kPeerIp) : from_ip) +
                     (from_port ? ":" + std::to_string(from_port) : "") + " -> " + ip + ":" +
                     std::to_string(port);
  return {what, [=] {
            AtPeer at;
            return connects(ip, port, from_ip, from_port);
          }};
}

// A TCP connect from the world's host to ip:port of the peer.
Path connect_out(std::string ip, std::uint16_t port) {
  return {"connect -> " + ip + ":" + std::to_string(port),
          [=] { return connects(ip, port); }};
}

// 20 UDP datagrams from the host to the peer's ip:port carrying `text`: all
// arrive, or (a drop) none.
Path udp_out(std::string ip, std::uint16_t port, std::string text) {
  return {"20 UDP datagrams with \"" + text + "\" -> " + ip + ":" + std::to_string(port), [=] {
            Fd receiver;
            {
              AtPeer at;
              receiver = bound(SOCK_DGRAM, ip, port);
            }
            const int got = datagrams_through(receiver, ip, port, text, 20);
            if (got != 0 && got != 20)
              throw std::runtime_error("udp_out: " + std::to_string(got) +
                                       " of 20 arrived, neither all nor none");
            return got == 20;
          }};
}

// The nftables tables of the world's host namespace, one per line.
std::string nft_tables() {
  std::string out = output_of({"/usr/sbin/nft", "list", "tables"});
  while (!out.empty() && out.back() == '\n')
    out.pop_back();
  return out;
}

std::string through(const std::vector<Path> &paths, bool want, bool &ok) {
  std::string seen;
  for (const auto &p : paths) {
    const bool got = p.gets_through();
    ok = ok && got == want;
    seen += (seen.empty() ? "" : ", ") + p.what + (got ? " gets through" : " is dropped");
  }
  return seen;
}

// A drop row: `cut` must not get through while the fault is on and `kept`
// must; after destroy all of them get through and no table is left.
Fixture drop_fixture(std::vector<std::string> words, std::string substituted,
                     std::shared_ptr<Listeners> listeners, std::vector<Path> cut,
                     std::vector<Path> kept) {
  Fixture fx;
  fx.words = std::move(words);
  fx.substituted = std::move(substituted);
  for (const auto &p : cut)
    if (!p.gets_through())
      throw std::runtime_error(p.what + " does not get through before the fault");
  fx.effect = [cut, kept, listeners](const std::string &uid) {
    bool ok = true;
    std::string seen = through(cut, false, ok) + "; " + through(kept, true, ok);
    const std::string tables = nft_tables();
    ok = ok && tables.find(uid) != std::string::npos;
    return Outcome{ok, seen + "; nft: " + tables};
  };
  fx.clean = [cut, listeners](const std::string &) {
    bool ok = true;
    std::string seen = through(cut, true, ok);
    const std::string tables = nft_tables();
    ok = ok && tables.empty();
    return Outcome{ok, seen + "; nft tables: " + (tables.empty() ? "none" : tables)};
  };
  return fx;
}

Fixture drop_by_source_ip(std::vector<std::string> words) {
  auto l = std::make_shared<Listeners>();
  l->at_host(NetworkWorld::kHostIp, 9000);
  return drop_fixture(replaced(words, "10.10.10.10", "10.78.0.10"),
                      "10.78.0.10 (an address of the veth's far end) for 10.10.10.10", l,
                      {connect_in(NetworkWorld::kHostIp, 9000, "10.78.0.10")},
                      {connect_in(NetworkWorld::kHostIp, 9000)});
}

Fixture drop_by_destination_ip(std::vector<std::string> words) {
  auto l = std::make_shared<Listeners>();
  l->at_host("0.0.0.0", 9000);
  return drop_fixture(replaced(words, "10.10.10.10", NetworkWorld::kHostIp2),
                      std::string(NetworkWorld::kHostIp2) +
                          " (a second address of eth0, as traffic in is to a local address) "
                          "for 10.10.10.10",
                      l, {connect_in(NetworkWorld::kHostIp2, 9000)},
                      {connect_in(NetworkWorld::kHostIp, 9000)});
}

Fixture drop_by_source_port(std::vector<std::string> words) {
  auto l = std::make_shared<Listeners>();
  l->at_host(NetworkWorld::kHostIp, 9000);
  return drop_fixture(std::move(words), "", l,
                      {connect_in(NetworkWorld::kHostIp, 9000, NetworkWorld::kPeerIp, 80)},
                      {connect_in(NetworkWorld::kHostIp, 9000, NetworkWorld::kPeerIp, 9080)});
}

Fixture drop_by_destination_ports(std::vector<std::string> words) {
  auto l = std::make_shared<Listeners>();
  for (std::uint16_t port : {80, 81, 9000})
    l->at_host(NetworkWorld::kHostIp, port);
  return drop_fixture(std::move(words), "", l,
                      {connect_in(NetworkWorld::kHostIp, 80), connect_in(NetworkWorld::kHostIp, 81)},
                      {connect_in(NetworkWorld::kHostIp, 9000)});
}

Fixture drop_out_by_destination_port(std::vector<std::string> words) {
  auto l = std::make_shared<Listeners>();
  for (std::uint16_t port : {80, 9000})
    l->at_peer(NetworkWorld::kPeerIp, port);
  return drop_fixture(std::move(words), "", l, {connect_out(NetworkWorld::kPeerIp, 80)},
                      {connect_out(NetworkWorld::kPeerIp, 9000)});
}

Fixture drop_out_by_pattern(std::vector<std::string> words) {
  return drop_fixture(std::move(words), "", std::make_shared<Listeners>(),
                      {udp_out(NetworkWorld::kPeerIp, 80, "Host: www.baidu.com")},
                      {udp_out(NetworkWorld::kPeerIp, 80, "Host: www.example.org")});
}

Fixture drop_out_by_port_and_pattern(std::vector<std::string> words) {
  return drop_fixture(std::move(words), "", std::make_shared<Listeners>(),
                      {udp_out(NetworkWorld::kPeerIp, 80, "Host: www.baidu.com")},
                      {udp_out(NetworkWorld::kPeerIp, 80, "Host: www.example.org"),
                       udp_out(NetworkWorld::kPeerIp, 9000, "Host: www.baidu.com")});
}


// ---- dns ----

// What the name www.baidu.com is "really": the answer of the run's own DNS
// server, which the private resolv.conf names.
constexpr const char *kRealAnswer = "192.0.2.80";

Fixture dns_override(std::vector<std::string> words) {
  // /etc of the run's own (an overlay in the private mount namespace the
  // world made before its bladed started), and a DNS server on the host
  // namespace's loopback.
  struct Resolver {
    dns::PrivateEtc etc{dns::PrivateEtc::Kind::Overlay,
                        "127.0.0.1 localhost\n# the compat run's own hosts file\n",
                        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"};
    dns::TinyDnsServer server{{{"www.baidu.com", kRealAnswer}}};
    std::string hosts = read_text("/etc/hosts");
  };
  auto r = std::make_shared<Resolver>();
  if (const std::string before = dns::resolve("www.baidu.com"); before != kRealAnswer)
    throw std::runtime_error("www.baidu.com resolves to " + before + " before the fault");
  Fixture fx;
  fx.words = std::move(words);
  fx.substituted = "as written; /etc/hosts and /etc/resolv.conf are the run's own (a private "
                   "mount namespace), www.baidu.com is answered " + std::string(kRealAnswer) +
                   " by the run's own DNS server";
  fx.effect = [r](const std::string &uid) {
    const std::string got = dns::resolve("www.baidu.com");
    const bool marked = read_text("/etc/hosts").find(uid) != std::string::npos;
    return Outcome{got == "10.0.0.0" && marked,
                   "getaddrinfo(www.baidu.com): " + got +
                       (marked ? ", /etc/hosts has the uid's line" : ", no line of the uid")};
  };
  fx.clean = [r](const std::string &) {
    const std::string got = dns::resolve("www.baidu.com");
    const bool same = read_text("/etc/hosts") == r->hosts;
    return Outcome{got == kRealAnswer && same,
                   "getaddrinfo(www.baidu.com): " + got + ", /etc/hosts " +
                       (same ? "byte-identical to before" : "differs from before")};
  };
  return fx;
}
// ---- delay, loss, duplicate, corrupt, reorder (in a guest with sch_netem) ----

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

const std::string kFarSubstitute = "10.78.0.39 (an address of the veth's far end) for 14.215.177.39";
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
        return Outcome{within(hit, 1900, 4600) && within(other, 0, 500),
                       "connect to local port 8080 took " + ms_text(hit) + ", to 9000 " +
                           ms_text(other)};
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
        return Outcome{within(hit, 4900, 5600) && within(spared, 0, 500),
                       "connect to port 9000 took " + ms_text(hit) + ", to excluded 8080 " +
                           ms_text(spared)};
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
std::pair<int, int> bounds(int n, double p) { return net::binomial_bounds(n, p, 0.9999); }

// Arrived: its share `p` of `t.sent` within the bounds.
std::pair<bool, std::string> arrived_share(const net::UdpTally &t, double p) {
  const auto [low, high] = bounds(t.sent, p);
  return {t.distinct >= low && t.distinct <= high,
          shown(t) + " (expected " + std::to_string(low) + "-" + std::to_string(high) + ")"};
}

Fixture udp_fixture(std::vector<std::string> words, std::string substituted,
                    std::function<Outcome()> effect, std::string ip, std::uint16_t port) {
  return netem_fixture(std::move(words), std::move(substituted), nullptr, std::move(effect),
                       [ip, port] {
                         const net::UdpTally t = burst(ip, port, 200);
                         return Outcome{untouched(t), "to " + ip + ":" + std::to_string(port) +
                                                          ": " + shown(t)};
                       });
}

Fixture loss_local_ports(std::vector<std::string> words) {
  return udp_fixture(
      std::move(words), "", [] {
        const auto [ok, seen] = arrived_share(burst(NetworkWorld::kPeerIp, 9000, 500, 8080), 0.3);
        const net::UdpTally other = burst(NetworkWorld::kPeerIp, 9000, 200, 9001);
        return Outcome{ok && untouched(other),
                       "from local port 8080: " + seen + "; from 9001: " + shown(other)};
      },
      NetworkWorld::kPeerIp, 9000);
}

Fixture loss_remote_port_ip(std::vector<std::string> words) {
  return udp_fixture(
      replaced(words, "14.215.177.39", "10.78.0.39"), kFarSubstitute,
      [] {
        const net::UdpTally hit = burst("10.78.0.39", 80, 200), port = burst("10.78.0.39", 9000, 200),
                       ip = burst(NetworkWorld::kPeerIp, 80, 200);
        return Outcome{hit.distinct == 0 && untouched(port) && untouched(ip),
                       "to 10.78.0.39:80: " + shown(hit) + "; to 10.78.0.39:9000: " +
                           shown(port) + "; to 10.78.0.2:80: " + shown(ip)};
      },
      "10.78.0.39", 80);
}

Fixture loss_exclude_ports(std::vector<std::string> words) {
  return udp_fixture(
      std::move(words), "", [] {
        const auto [ok, seen] = arrived_share(burst(NetworkWorld::kPeerIp, 9000, 500), 0.4);
        const net::UdpTally spared = burst(NetworkWorld::kPeerIp, 8080, 200);
        return Outcome{ok && untouched(spared),
                       "to port 9000: " + seen + "; to excluded 8080: " + shown(spared)};
      },
      NetworkWorld::kPeerIp, 9000);
}

Fixture loss_all(std::vector<std::string> words) {
  return udp_fixture(
      std::move(words), "as written; destroyed by the row before the 20 s timeout", [] {
        const net::UdpTally t = burst(NetworkWorld::kPeerIp, 9000, 200);
        return Outcome{t.distinct == 0, "to 10.78.0.2:9000: " + shown(t)};
      },
      NetworkWorld::kPeerIp, 9000);
}

Fixture duplicate_all(std::vector<std::string> words) {
  return udp_fixture(
      std::move(words), "", [] {
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

std::vector<Row> network_rows() {
  const Where here = Where::network, guest = Where::netem_guest;
  return {
      row("network",
          "blade create network delay --time 3000 --offset 1000 --interface eth0 --local-port "
          "8080,8081",
          delay_local_ports, guest),
      row("network",
          "blade create network delay --time 3000 --interface eth0 --remote-port 80 "
          "--destination-ip 14.215.177.39",
          delay_remote_port_ip, guest),
      row("network", "blade create network delay --time 5000 --interface eth0 --exclude-port 22,8000-8080",
          delay_exclude_ports, guest),
      row("network", "blade create network loss --percent 70 --interface eth0 --local-port 8080,8081",
          loss_local_ports, guest),
      row("network", "blade create network loss --percent 100 --interface eth0 --remote-port 80 "
          "--destination-ip 14.215.177.39", loss_remote_port_ip, guest),
      row("network", "blade create network loss --percent 60 --interface eth0 --exclude-port 22,8000-8080",
          loss_exclude_ports, guest),
      row("network", "blade create network loss --percent 100 --interface eth0 --timeout 20", loss_all,
          guest),
      row("network", "blade create network duplicate --percent=10 --interface=eth0", duplicate_all,
          guest),
      row("network",
          "blade create network corrupt --percent 80 --destination-ip 180.101.49.12 --interface eth0",
          corrupt_destination, guest),
      row("network",
          "blade c network reorder --correlation 80 --percent 50 --gap 2 --time 500 --interface eth0 "
          "--destination-ip 180.101.49.12",
          reorder_destination, guest),
      row("network", "blade create network dns --domain www.baidu.com --ip 10.0.0.0", dns_override,
          here),
      row("network", "blade create network drop --source-ip 10.10.10.10 --network-traffic in",
          drop_by_source_ip, here),
      row("network", "blade create network drop --destination-ip 10.10.10.10 --network-traffic in",
          drop_by_destination_ip, here),
      row("network", "blade create network drop --source-port 80 --network-traffic in",
          drop_by_source_port, here),
      row("network", "blade create network drop --destination-port 80,81 --network-traffic in",
          drop_by_destination_ports, here),
      row("network", "blade create network drop --destination-port 80 --network-traffic out",
          drop_out_by_destination_port, here),
      row("network", "blade create network drop --string-pattern baidu.com --network-traffic out",
          drop_out_by_pattern, here),
      row("network",
          "blade create network drop --destination-port 80 --string-pattern baidu.com "
          "--network-traffic out",
          drop_out_by_port_and_pattern, here),
      row("network", "blade create network occupy --port 8080 --force", occupy_force, here),
      row("network", "blade create network loss --percent 100 --interface eth0 --remote-port 80 "
          "--destination-ip 14.215.177.39", loss_remote_port_ip, guest),
  };
}

}  // namespace blade::test::compat
