// network drop against a real bladed born in a network namespace the test
// makes ("host"), with a veth to a second one ("peer"): each fault is
// measured on real sockets (a TCP connect, UDP datagrams counted at the
// receiver) and the kernel's nftables state is read back with `nft list`
// inside the namespace. Nothing here touches the test machine's own
// interfaces or firewall.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../../plugins/common/handles.hpp"
#include "../support/eventually.hpp"
#include "../support/uml_vm.hpp"
#include "bladed_process.hpp"
#include "experiment_calls.hpp"
#include "netns.hpp"
#include "traffic.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using blade::plugins::UniqueFd;
using nlohmann::json;
using namespace blade::test;
using namespace blade::test::net;

namespace {

// argv's standard output (no shell); "" when it fails. netns.hpp's run()
// does the work in a child whose standard output is the pipe.
std::string capture(const std::vector<std::string> &argv) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return "";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::_exit(run(argv, false));
  }
  ::close(pipefd[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? out : "";
}

std::uint16_t local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len) == 0);
  return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in *>(&ss)->sin_port
                                       : reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port);
}

struct TcpListener {
  UniqueFd fd;
  std::uint16_t port = 0;
  explicit TcpListener(const std::string &ip) : fd(net::bound_socket(SOCK_STREAM, ip)) {
    REQUIRE(::listen(fd.get(), 64) == 0);
    port = local_port(fd.get());
  }
};

// Whether a TCP connect to ip:port (from the address `from`, if given)
// completes within `wait`. A dropped SYN is first resent after a second, so
// 700 ms tells a drop from an answer.
bool tcp_connects(const std::string &ip, std::uint16_t port, const std::string &from = "",
                  std::chrono::milliseconds wait = 700ms) {
  return net::connect_ms(ip, port, wait, from).has_value();
}

// The two namespaces, the veth between them (host 10.77.0.1 and
// fd77::1, peer 10.77.0.2, .3 and fd77::2, ::3), and a bladed with only the
// network plugin, born in host.
struct Lab {
  NetNs host{"bdrop"};
  NetNs peer{"bdropp"};
  VethPair veth{host, peer, "10.77.0.1", "10.77.0.2"};
  std::unique_ptr<BladedProcess> d;

  // `args` for bladed (e.g. --bind 0.0.0.0).
  explicit Lab(std::vector<std::string> args = {}) {
    must({"ip", "-n", peer.name(), "addr", "add", "10.77.0.3/24", "dev", veth.b_if});
    must({"ip", "-n", host.name(), "addr", "add", "fd77::1/64", "dev", veth.a_if, "nodad"});
    must({"ip", "-n", peer.name(), "addr", "add", "fd77::2/64", "dev", veth.b_if, "nodad"});
    must({"ip", "-n", peer.name(), "addr", "add", "fd77::3/64", "dev", veth.b_if, "nodad"});
    EnterNetNs in(host);
    d = std::make_unique<BladedProcess>(
        only_plugin(fs::path(BLADE_BUILT_PLUGIN_DIR) / "network.so", std::move(args)));
  }

  // `nft list tables` inside host: one "table <family> <name>" a line.
  std::string tables() const {
    return capture({"ip", "netns", "exec", host.name(), "nft", "list", "tables"});
  }
  bool has_table(const std::string &uid) const {
    return tables().find("table inet blade_" + uid + "\n") != std::string::npos;
  }
  fs::path drop_state() const { return d->dir / "state" / "plugins" / "network" / "drop"; }
};

// A UDP receiver in host (10.77.0.1, a buffer big enough for every test
// here) and a sender in peer (10.77.0.2). Made with the thread in host.
struct UdpPath {
  UniqueFd rx, tx;
  std::uint16_t port = 0;
  sockaddr_storage to{};
  socklen_t len = 0;

  explicit UdpPath(const Lab &lab) : rx(net::bound_socket(SOCK_DGRAM, "10.77.0.1")) {
    const int big = 8 << 20;
    ::setsockopt(rx.get(), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
    port = local_port(rx.get());
    to = net::sock_address("10.77.0.1", port, len);
    EnterNetNs there(lab.peer);
    tx = net::bound_socket(SOCK_DGRAM, "10.77.0.2");
  }
  void send(const std::string &payload) {
    REQUIRE(::sendto(tx.get(), payload.data(), payload.size(), 0,
                     reinterpret_cast<const sockaddr *>(&to), len) > 0);
  }
  // What arrives until nothing has for `wait_ms`.
  std::vector<std::string> drain(int wait_ms) {
    std::vector<std::string> got;
    char buf[128];
    pollfd p{rx.get(), POLLIN, 0};
    while (::poll(&p, 1, wait_ms) == 1) {
      const ssize_t n = ::recv(rx.get(), buf, sizeof buf, 0);
      if (n > 0) got.emplace_back(buf, static_cast<std::size_t>(n));
    }
    return got;
  }
};

json drop(json flags) {
  return {{"target", "network"}, {"action", "drop"}, {"flags", flags}};
}

Answer create_drop(httplib::Client &c, const json &flags) {
  Answer a = create(c, drop(flags));
  INFO(a.body.dump());
  REQUIRE(a.status == 201);
  return a;
}

// A dry run of a drop with `flags`.
Answer dry_drop(httplib::Client &c, const json &flags) {
  json body = drop(flags);
  body["dry_run"] = true;
  return create(c, body);
}

// The uids of every experiment the daemon lists; empty when it does not
// answer.
std::vector<std::string> experiment_uids(httplib::Client &c) {
  std::vector<std::string> out;
  auto r = c.Get("/v1/experiments", auth());
  if (!r || r->status != 200) return out;
  // Parsed into a variable: a range-for over a member of a temporary would
  // read a destroyed object.
  const json body = json::parse(r->body);
  for (const auto &x : body["data"]["items"])
    out.push_back(x["uid"]);
  return out;
}

}  // namespace

TEST_CASE("drop of one port stops a TCP connect to it while another port works, until destroy") {
  Lab lab;
  EnterNetNs in(lab.host);
  TcpListener hit("10.77.0.1"), spared("10.77.0.1");
  auto from_peer = [&](std::uint16_t port) {
    EnterNetNs there(lab.peer);
    return tcp_connects("10.77.0.1", port);
  };
  REQUIRE(from_peer(hit.port));
  REQUIRE(from_peer(spared.port));
  CHECK(lab.tables().empty());

  auto c = lab.d->client();
  const Answer a = create_drop(c, {{"destination-port", std::to_string(hit.port)}});
  const json &result = a.body["data"]["result"];
  CHECK(result["table"] == "blade_" + a.uid());
  // No network-traffic: both directions, as ChaosBlade's INPUT and OUTPUT.
  CHECK(result["hooks"] == json::array({"input", "output"}));
  CHECK(result["drop"]["protocol"] == "tcp and udp");
  CHECK(lab.has_table(a.uid()));
  CHECK_FALSE(from_peer(hit.port));
  CHECK(from_peer(spared.port));

  // A second drop at once: its own table, and destroying it leaves the
  // first one whole.
  const Answer b = create_drop(c, {{"source-port", "9"}, {"protocol", "udp"}});
  CHECK(lab.has_table(a.uid()));
  CHECK(lab.has_table(b.uid()));
  check_destroyed(c, b.uid());
  CHECK_FALSE(lab.has_table(b.uid()));
  CHECK(lab.has_table(a.uid()));
  CHECK_FALSE(from_peer(hit.port));

  check_destroyed(c, a.uid());
  CHECK(lab.tables().empty());
  CHECK(from_peer(hit.port));
  check_destroyed(c, a.uid());  // again: idempotent
  CHECK_FALSE(fs::exists(lab.drop_state() / a.uid()));
}

TEST_CASE("random drop of 30% of 2,000 UDP datagrams lands within binomial 99% bounds") {
  Lab lab;
  EnterNetNs in(lab.host);
  UdpPath udp(lab);
  const std::uint16_t port = udp.port;
  constexpr int kSent = 2000;
  // Sent in bursts drained at once, so neither the veth backlog nor the
  // socket buffer loses any: the only loss is the fault's.
  auto received = [&] {
    std::size_t got = 0;
    for (int i = 0; i < kSent; ++i) {
      udp.send(std::to_string(i));
      if (i % 50 == 49) got += udp.drain(5).size();
    }
    return static_cast<int>(got + udp.drain(300).size());
  };
  REQUIRE(received() == kSent);  // no loss of its own

  auto c = lab.d->client();
  const Answer a = create_drop(
      c, {{"destination-port", std::to_string(port)}, {"protocol", "udp"}, {"percent", "30"}});
  CHECK(a.body["data"]["result"]["drop"]["percent"] == 30.0);
  const int got = received();
  // Kept ~ Binomial(2000, 0.7): mean 1400, sd 20.5; 99% two-sided bounds
  // are mean +/- 2.576 sd (normal approximation, fine at this n).
  const double sd = std::sqrt(kSent * 0.3 * 0.7);
  MESSAGE("kept " << got << " of " << kSent << " (dropped " << 100.0 * (kSent - got) / kSent
                  << "%)");
  CHECK(got >= static_cast<int>(std::floor(1400 - 2.576 * sd)));
  CHECK(got <= static_cast<int>(std::ceil(1400 + 2.576 * sd)));
  check_destroyed(c, a.uid());
  CHECK(received() == kSent);
  CHECK(lab.tables().empty());
}

TEST_CASE("string-pattern drops the datagrams holding the string and no others") {
  Lab lab;
  EnterNetNs in(lab.host);
  UdpPath udp(lab);
  const std::uint16_t port = udp.port;
  // 20 datagrams, every other one holding the pattern; what arrives.
  auto arrived = [&] {
    for (int i = 0; i < 20; ++i)
      udp.send(std::to_string(i) +
               (i % 2 ? " GET /blade-secret HTTP/1.1" : " GET /public HTTP/1.1"));
    return udp.drain(300);
  };
  REQUIRE(arrived().size() == 20);

  auto c = lab.d->client();
  SUBCASE("with a port") {
    const Answer a = create_drop(c, {{"string-pattern", "blade-secret"},
                                     {"destination-port", std::to_string(port)},
                                     {"protocol", "udp"}});
    const json &result = a.body["data"]["result"];
    CHECK(result["drop"]["string_pattern"] == "blade-secret");
    CHECK(result["payload_rule"]["chain"] == "drop_payload");
    const auto got = arrived();
    CHECK(got.size() == 10);
    for (const auto &g : got)
      CHECK(g.find("blade-secret") == std::string::npos);
    check_destroyed(c, a.uid());
  }
  SUBCASE("alone: every packet is searched, the control path still spared") {
    const Answer a = create_drop(c, {{"string-pattern", "blade-secret"}});
    CHECK(arrived().size() == 10);
    // The API's answer holds the pattern (the experiment's flags) and still
    // comes through: the control path is accepted before the search.
    auto got = c.Get(("/v1/experiments/" + a.uid()).c_str(), auth());
    REQUIRE(got);
    CHECK(got->status == 200);
    CHECK(got->body.find("blade-secret") != std::string::npos);
    check_destroyed(c, a.uid());
  }
  CHECK(lab.tables().empty());
  CHECK(arrived().size() == 20);
}

TEST_CASE("network-traffic out and ip selectors, IPv4 and IPv6, hit only the addresses named") {
  Lab lab;
  EnterNetNs in(lab.host);
  std::unique_ptr<TcpListener> v4, v6;
  {
    EnterNetNs there(lab.peer);
    v4 = std::make_unique<TcpListener>("0.0.0.0");
    v6 = std::make_unique<TcpListener>("::");
  }
  auto c = lab.d->client();
  SUBCASE("out, by destination-ip") {
    REQUIRE(tcp_connects("10.77.0.2", v4->port));
    REQUIRE(tcp_connects("fd77::2", v6->port));
    const Answer a =
        create_drop(c, {{"network-traffic", "out"}, {"destination-ip", "10.77.0.2,fd77::2/128"}});
    CHECK(a.body["data"]["result"]["hooks"] == json::array({"output"}));
    CHECK_FALSE(tcp_connects("10.77.0.2", v4->port));
    CHECK_FALSE(tcp_connects("fd77::2", v6->port));
    CHECK(tcp_connects("10.77.0.3", v4->port));
    CHECK(tcp_connects("fd77::3", v6->port));
    check_destroyed(c, a.uid());
    CHECK(tcp_connects("10.77.0.2", v4->port));
    CHECK(tcp_connects("fd77::2", v6->port));
  }
  SUBCASE("in, by source-ip: a connect from the peer's named address fails, from another works") {
    TcpListener here4("10.77.0.1"), here6("fd77::1");
    auto from = [&](const std::string &src, const std::string &dst, std::uint16_t port) {
      EnterNetNs there(lab.peer);
      return tcp_connects(dst, port, src);
    };
    REQUIRE(from("10.77.0.3", "10.77.0.1", here4.port));
    const Answer a = create_drop(c, {{"source-ip", "10.77.0.3/32,fd77::3"}, {"protocol", "tcp"}});
    CHECK_FALSE(from("10.77.0.3", "10.77.0.1", here4.port));
    CHECK_FALSE(from("fd77::3", "fd77::1", here6.port));
    CHECK(from("10.77.0.2", "10.77.0.1", here4.port));
    CHECK(from("fd77::2", "fd77::1", here6.port));
    check_destroyed(c, a.uid());
    CHECK(from("10.77.0.3", "10.77.0.1", here4.port));
  }
  CHECK(lab.tables().empty());
}

TEST_CASE(
    "the API stays reachable during a 100% drop aimed at the interface and addresses it "
    "listens on, and the result says what was spared") {
  Lab lab;
  EnterNetNs in(lab.host);
  TcpListener other("127.0.0.1");
  REQUIRE(tcp_connects("127.0.0.1", other.port));
  auto c = lab.d->client();
  for (const json &flags : {json{{"destination-port", "1-65535"}, {"interface", "lo"}},
                            json{{"source-ip", "0.0.0.0/0,::/0"}, {"network-traffic", "out"}}}) {
    CAPTURE(flags.dump());
    const Answer a = create_drop(c, flags);
    const json &excluded = a.body["data"]["result"]["excluded"];
    INFO(excluded.dump());
    bool api_spared = false, ssh_spared = false;
    for (const auto &e : excluded) {
      api_spared = api_spared || e["port"] == lab.d->port;
      ssh_spared = ssh_spared || e["port"] == 22;
    }
    CHECK(api_spared);
    CHECK(ssh_spared);
    CHECK(a.body["data"]["result"]["control_ports_included"] == false);
    // New connections to the API, over lo, both ways.
    for (int i = 0; i < 3; ++i) {
      auto fresh = lab.d->client();
      auto got = fresh.Get(("/v1/experiments/" + a.uid()).c_str(), auth());
      REQUIRE(got);
      CHECK(got->status == 200);
    }
    CHECK_FALSE(tcp_connects("127.0.0.1", other.port));
    check_destroyed(c, a.uid());
    CHECK(tcp_connects("127.0.0.1", other.port));
  }
  CHECK(lab.tables().empty());
}

TEST_CASE(
    "a client on another host reaches the API during a 100% drop on the interface it "
    "comes through, both ways") {
  Lab lab({"--bind", "0.0.0.0"});
  EnterNetNs in(lab.host);
  TcpListener other("10.77.0.1");
  const std::string remote_api = "http://10.77.0.1:" + std::to_string(lab.d->port);
  // A request from peer, over the veth: its status, 0 when none came back.
  auto from_peer = [&](const std::string &uid) {
    EnterNetNs there(lab.peer);
    httplib::Client remote(remote_api);
    remote.set_connection_timeout(2);
    remote.set_read_timeout(3);
    auto got = remote.Get(("/v1/experiments/" + uid).c_str(), auth());
    return got ? got->status : 0;
  };
  auto peer_connects = [&] {
    EnterNetNs there(lab.peer);
    return tcp_connects("10.77.0.1", other.port);
  };
  REQUIRE(peer_connects());
  auto c = lab.d->client();
  for (const json &flags : {json{{"destination-port", "1-65535"}, {"interface", lab.veth.a_if}},
                            json{{"destination-ip", "10.77.0.0/24"},
                                 {"network-traffic", "out"},
                                 {"interface", lab.veth.a_if}}}) {
    CAPTURE(flags.dump());
    const Answer a = create_drop(c, flags);
    for (int i = 0; i < 3; ++i)
      CHECK(from_peer(a.uid()) == 200);
    CHECK_FALSE(peer_connects());
    check_destroyed(c, a.uid());
    CHECK(peer_connects());
  }
  CHECK(lab.tables().empty());
}

TEST_CASE("SIGKILL of bladed with a drop active: the restart's recovery deletes the table") {
  Lab lab;
  EnterNetNs in(lab.host);
  TcpListener hit("10.77.0.1");
  std::string uid;
  {
    auto c = lab.d->client();
    uid = create_drop(c, {{"destination-port", std::to_string(hit.port)}}).uid();
  }
  lab.d->crash();
  CHECK(lab.has_table(uid));  // the fault outlived the daemon
  {
    EnterNetNs there(lab.peer);
    CHECK_FALSE(tcp_connects("10.77.0.1", hit.port));
  }
  lab.d->restart();  // in host, as the first one was
  auto c = lab.d->client();
  CHECK(wait_destroyed(c, uid) == "destroyed");
  CHECK(lab.tables().empty());
  EnterNetNs there(lab.peer);
  CHECK(tcp_connects("10.77.0.1", hit.port));
}

#ifdef BLADE_FAILPOINTS

TEST_CASE(
    "a crash inside create, before the table, before its payload rule or after both, is undone "
    "from the record written ahead") {
  Lab lab;
  EnterNetNs in(lab.host);
  const std::vector<std::string> points = {
      "network.drop.before_table", "network.drop.before_payload_rule", "network.drop.after_table"};
  for (std::size_t i = 0; i < points.size(); ++i) {
    const std::string &point = points[i];
    CAPTURE(point);
    lab.d->crash();
    lab.d->set_env({"BLADE_FAILPOINTS=" + point + "=kill"});
    lab.d->restart();
    {
      auto c = lab.d->client();
      CHECK_FALSE(post_json(c, "/v1/experiments",
                            drop({{"destination-port", "4000-4100"}, {"string-pattern", "x"}})));
    }
    REQUIRE(lab.d->process->exit_code(10s) == -SIGKILL);
    // The window the point stands for: the table is there after, not before.
    CHECK(lab.tables().empty() == (point == "network.drop.before_table"));
    lab.d->set_env({});
    lab.d->restart();
    auto c = lab.d->client();
    const auto uids = experiment_uids(c);
    CHECK(uids.size() == i + 1);
    for (const auto &uid : uids) {
      CHECK(wait_destroyed(c, uid) == "destroyed");
      // The create never returned: the host had only the record it wrote
      // ahead, which is all destroy used.
      CHECK_FALSE(fs::exists(lab.drop_state() / uid));
    }
    CHECK(lab.tables().empty());
  }
}

TEST_CASE("with no record at all, destroy finds the experiment's table by its name") {
  Lab lab;
  EnterNetNs in(lab.host);
  lab.d->crash();
  // The create stalls before the plugin is called: its row is stored with
  // no record, the moment a table could exist that no record names.
  lab.d->set_env({"BLADE_FAILPOINTS=core.create.before_plugin=sleep:5000"});
  lab.d->restart();
  // Joined at scope exit too, should a check end the case early.
  std::jthread creating([&] {
    EnterNetNs also(lab.host);
    auto c = lab.d->client();
    post_json(c, "/v1/experiments", drop({{"destination-port", "4000"}}));
  });
  auto c = lab.d->client();
  std::vector<std::string> uids;
  REQUIRE(eventually([&] { return (uids = experiment_uids(c)).size() == 1; }));
  const std::string uid = uids[0];
  for (const std::string &name : {"blade_" + uid, std::string("blade_0000000000000000")})
    must({"ip", "netns", "exec", lab.host.name(), "nft", "add", "table", "inet", name});
  lab.d->crash();
  creating.join();
  lab.d->set_env({});
  lab.d->restart();
  auto c2 = lab.d->client();
  CHECK(wait_destroyed(c2, uid) == "destroyed");
  // Another experiment's table (a name no row here has) is left alone.
  CHECK(lab.tables() == "table inet blade_0000000000000000\n");
}

#endif  // BLADE_FAILPOINTS

TEST_CASE("bad input is a 400 naming the flag, and nothing changes") {
  Lab lab;
  EnterNetNs in(lab.host);
  auto c = lab.d->client();
  struct Bad {
    json flags;
    std::string field;
  };
  for (const Bad &b : {
           Bad{json::object(), "source-ip"},
           Bad{{{"protocol", "tcp"}}, "source-ip"},
           Bad{{{"source-ip", "10.0.0.300"}}, "source-ip"},
           Bad{{{"destination-ip", "10.0.0.0/33"}}, "destination-ip"},
           Bad{{{"source-port", "0"}}, "source-port"},
           Bad{{{"destination-port", "70000"}}, "destination-port"},
           Bad{{{"destination-port", "90-80"}}, "destination-port"},
           Bad{{{"destination-port", "80"}, {"percent", "101"}}, "percent"},
           Bad{{{"destination-port", "80"}, {"percent", "-1"}}, "percent"},
           Bad{{{"destination-port", "80"}, {"network-traffic", "sideways"}}, "network-traffic"},
           Bad{{{"destination-port", "80"}, {"protocol", "sctp"}}, "protocol"},
           Bad{{{"destination-port", "80"}, {"protocol", "icmp"}}, "protocol"},
           Bad{{{"destination-port", "80"}, {"interface", "nosuch0"}}, "interface"},
           Bad{{{"destination-port", "80"}, {"interface", "lo\" drop; #"}}, "interface"},
           Bad{{{"source-ip", "10.0.0.1"}, {"destination-ip", "fd00::1"}}, "destination-ip"},
           Bad{{{"string-pattern", std::string(129, 'x')}}, "string-pattern"},
       }) {
    CAPTURE(b.flags.dump());
    const Answer a = create(c, drop(b.flags));
    INFO(a.body.dump());
    CHECK(a.status == 400);
    CHECK(a.field() == "flags." + b.field);
  }
  CHECK(lab.tables().empty());
  CHECK_FALSE(fs::exists(lab.drop_state()));
}

TEST_CASE("a dry run shows the ruleset the kernel would load, and loads nothing") {
  Lab lab;
  EnterNetNs in(lab.host);
  auto c = lab.d->client();
  const Answer a = dry_drop(c, {{"destination-port", "80,80,1000-2000,1500-3000"},
                                {"source-ip", "10.0.0.0/8,10.1.0.0/16,fd00::/8"},
                                {"percent", "12.34"}});
  INFO(a.body.dump());
  REQUIRE(a.status == 200);
  const json plan = a.body["data"]["plan"];
  CHECK(plan["kernel_check"] == "accepted");
  const std::string rules = plan["ruleset"];
  // Overlapping ranges and nested networks merged; fractional percent kept.
  CHECK(rules.find("th dport { 80, 1000-3000 }") != std::string::npos);
  CHECK(rules.find("ip saddr { 10.0.0.0/8 }") != std::string::npos);
  CHECK(rules.find("ip6 saddr { fd00::/8 }") != std::string::npos);
  CHECK(rules.find("numgen random mod 10000 < 1234 drop") != std::string::npos);
  CHECK(rules.find(std::to_string(lab.d->port)) != std::string::npos);  // the API spared
  CHECK(lab.tables().empty());

  // ICMP of one family on one interface, percent 0 (a rule that never
  // matches, as asked): the kernel takes it too.
  const Answer icmp = dry_drop(
      c, {{"source-ip", "::/0"}, {"protocol", "icmp"}, {"interface", "lo"}, {"percent", "0"}});
  REQUIRE(icmp.status == 200);
  CHECK(icmp.body["data"]["plan"]["kernel_check"] == "accepted");
  CHECK(std::string(icmp.body["data"]["plan"]["ruleset"])
            .find("iifname \"lo\" ip6 saddr { ::/0 } meta l4proto ipv6-icmp numgen random mod "
                  "10000 < 0 drop") != std::string::npos);

  // include-control-ports: nothing spared, and the plan says so.
  const Answer all = dry_drop(c, {{"destination-port", "80"}, {"include-control-ports", true}});
  REQUIRE(all.status == 200);
  CHECK(all.body["data"]["plan"]["excluded"].empty());
  CHECK(all.body["data"]["plan"]["control_ports_included"] == true);
  CHECK(std::string(all.body["data"]["plan"]["ruleset"]).find("accept\n") == std::string::npos);
  CHECK(lab.tables().empty());
}

namespace {

// Boots user-mode Linux with `modules` loaded and runs the guest cases
// named `filter` there.
void check_in_guest(const std::string &filter, std::vector<std::string> modules) {
  UmlOptions o;
  o.modules = std::move(modules);
  const UmlResult r = run_guest_cases(filter, o);
  MESSAGE("user-mode Linux run took " << r.seconds << " s; guest " << r.summary());
  INFO(r.report());
  CHECK(r.ok());
}

// In a guest whose kernel lacks something: a bladed there answers each of
// `flag_sets` with a 422 whose message holds every one of `says` (and is
// short: nft's first error, not every echo of it), writes no record and
// keeps running.
void check_refused_in_guest(const std::vector<json> &flag_sets,
                            const std::vector<std::string> &says) {
  BladedProcess d(only_plugin(fs::path(BLADE_BUILT_PLUGIN_DIR) / "network.so"));
  auto c = d.client();
  for (const json &flags : flag_sets) {
    CAPTURE(flags.dump());
    const Answer a = create(c, drop(flags));
    INFO(a.body.dump());
    CHECK(a.status == 422);
    for (const auto &said : says)
      CHECK(a.message().find(said) != std::string::npos);
    CHECK(a.message().size() < 600);
  }
  const Answer plan = dry_drop(c, flag_sets.front());
  CHECK(plan.status == 200);
  CHECK(plan.body["data"].value("note", "").find(says.front()) != std::string::npos);
  CHECK_FALSE(d.process->exit_code(0ms));  // still running
  const fs::path records = d.dir / "state" / "plugins" / "network" / "drop";
  CHECK((!fs::exists(records) || fs::is_empty(records)));
}

}  // namespace

// A kernel with no nfnetlink at all (libnftables would exit() the daemon
// when it cannot open its socket): a user-mode Linux guest that loads no
// module, whose netfilter netlink is a module (tests/support/uml_vm.hpp).
TEST_CASE("on a kernel without nfnetlink a drop is a 422 naming it, and the daemon lives on") {
  check_in_guest("guest: drop without nfnetlink*", {});
}

TEST_CASE("guest: drop without nfnetlink is a 422 naming it, its dry run a note" *
          doctest::skip()) {
  {
    UniqueFd nl(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER));
    REQUIRE_MESSAGE(!nl, "this kernel has nfnetlink: the case needs one without");
  }
  check_refused_in_guest(
      {json{{"destination-port", "80"}}, json{{"source-ip", "10.0.0.0/8"}, {"percent", "30"}},
       json{{"string-pattern", "x"}}},
      {"no nfnetlink", "modprobe nfnetlink nf_tables"});
}

// nfnetlink there, nf_tables not (its module never loaded).
TEST_CASE("on a kernel with nfnetlink but no nf_tables a drop is a 422 naming it") {
  check_in_guest("guest: drop without nf_tables*", {"nfnetlink"});
}

TEST_CASE("guest: drop without nf_tables is a 422 naming it" * doctest::skip()) {
  REQUIRE_MESSAGE(!fs::exists("/sys/module/nf_tables"), "this kernel has nf_tables");
  check_refused_in_guest({json{{"destination-port", "80"}}},
                         {"no nf_tables", "modprobe nf_tables"});
}

// nf_tables there, its inet family not: user-mode Linux's nf_tables module is
// built without CONFIG_NF_TABLES_INET.
TEST_CASE("on a kernel whose nf_tables has no inet family a drop is a 422 naming it") {
  check_in_guest("guest: drop without the inet family*", {"nf_tables"});
}

TEST_CASE("guest: drop without the inet family is a 422 naming it, in a few lines" *
          doctest::skip()) {
  REQUIRE_MESSAGE(fs::exists("/sys/module/nf_tables"), "nf_tables was not loaded");
  check_refused_in_guest(
      {json{{"destination-port", "80"}}, json{{"destination-port", "80"}, {"percent", "30"}}},
      {"inet family (CONFIG_NF_TABLES_INET", "Operation not supported"});
}
