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
//   machine's kernel lacks: rows_netem.cpp, run in a user-mode Linux guest.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <optional>

#include "../network/dns_test_support.hpp"
#include "../support/eventually.hpp"
#include "command_words.hpp"
#include "example_row.hpp"
#include "network_rows.hpp"

namespace blade::test::compat {
namespace {

using namespace std::chrono_literals;
using namespace probe;

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
    if (!eventually(
            [&] { return read_text("/proc/" + std::to_string(pid_) + "/comm") == "sleep\n"; }, 5s))
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
  fx.substituted =
      "as written; 8080 is a port of the run's own network namespace, held by a "
      "/bin/sleep (pid " +
      std::to_string(holder->pid()) + ") the run started with a listening socket";
  fx.effect = [holder](const std::string &) {
    const int signal = holder->ended_by(5s);
    const int err = bind_errno(8080);
    return Outcome{
        (signal == SIGTERM || signal == SIGKILL) && err == EADDRINUSE,
        "the holder " +
            (signal ? "ended by " + std::string(::strsignal(signal)) : std::string("still runs")) +
            ", bind(8080): " + (err ? std::strerror(err) : "succeeded")};
  };
  fx.clean = [](const std::string &) {
    int err = -1;
    const bool ok = eventually([&] { return (err = bind_errno(8080)) == 0; }, 5s);
    return Outcome{ok, std::string("bind(8080): ") + (err ? std::strerror(err) : "succeeded")};
  };
  return fx;
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
  return {"connect -> " + ip + ":" + std::to_string(port), [=] { return connects(ip, port); }};
}

// 20 UDP datagrams from the host to the peer's ip:port carrying `text`: all
// arrive, or (a drop) none.
Path udp_out(std::string ip, std::uint16_t port, std::string text) {
  return {"20 UDP datagrams with \"" + text + "\" -> " + ip + ":" + std::to_string(port), [=] {
            Fd receiver;
            {
              AtPeer at;
              receiver = bound_socket(SOCK_DGRAM, ip, port);
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
  return drop_fixture(
      std::move(words), "", l,
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
  fx.substituted =
      "as written; /etc/hosts and /etc/resolv.conf are the run's own (a private "
      "mount namespace), www.baidu.com is answered " +
      std::string(kRealAnswer) + " by the run's own DNS server";
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

}  // namespace

std::vector<Row> network_rows() {
  const Where here = Where::network;
  // In the table's order: the netem rows come first, and the occupy file's
  // examples end with a loss line.
  std::vector<Row> rows = netem_rows();
  const std::vector<Row> more = {
      network_row("blade create network dns --domain www.baidu.com --ip 10.0.0.0", dns_override,
                  here),
      network_row("blade create network drop --source-ip 10.10.10.10 --network-traffic in",
                  drop_by_source_ip, here),
      network_row("blade create network drop --destination-ip 10.10.10.10 --network-traffic in",
                  drop_by_destination_ip, here),
      network_row("blade create network drop --source-port 80 --network-traffic in",
                  drop_by_source_port, here),
      network_row("blade create network drop --destination-port 80,81 --network-traffic in",
                  drop_by_destination_ports, here),
      network_row("blade create network drop --destination-port 80 --network-traffic out",
                  drop_out_by_destination_port, here),
      network_row("blade create network drop --string-pattern baidu.com --network-traffic out",
                  drop_out_by_pattern, here),
      network_row("blade create network drop --destination-port 80 --string-pattern baidu.com "
                  "--network-traffic out",
                  drop_out_by_port_and_pattern, here),
      network_row("blade create network occupy --port 8080 --force", occupy_force, here),
      network_row("blade create network loss --percent 100 --interface eth0 --remote-port 80 "
                  "--destination-ip 14.215.177.39",
                  loss_remote_port_ip, Where::netem_guest),
  };
  rows.insert(rows.end(), more.begin(), more.end());
  return rows;
}

}  // namespace blade::test::compat
