// The netem family's qdiscs (network delay, loss, duplicate, corrupt,
// reorder, rate) read back from the kernel: what a create installs, what
// destroy leaves, the prior root put back byte for byte, refusals.
//
// On the host (whose kernel has no sch_netem or sch_prio, but has sch_tbf):
// the 422 naming the missing module with the veth's qdiscs unchanged, the
// 400s, and the rate fault (tbf) end to end. Inside user-mode Linux
// (tests/support/uml_vm.hpp, modules sch_netem, sch_prio, sch_tbf, cls_u32),
// one boot runs the "guest: netem" cases: the trees after create, nothing
// left after destroy, a prior tbf restored byte for byte, 409s, force,
// recovery after SIGKILL, destroy after a removal by hand.
//
// Every fault is aimed at a veth in a namespace the test made, with bladed
// born in it. The kernel is read with a raw rtnetlink dump written here (not
// the plugin's code) and with `tc` (test scaffolding only).
#include <arpa/inet.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "../os/failpoint_kill.hpp"
#include "../support/child_process.hpp"
#include "../support/file_text.hpp"
#include "../support/temp_dir.hpp"
#include "../support/uml_vm.hpp"
#include "bladed_process.hpp"
#include "experiment_calls.hpp"
#include "netns.hpp"

using namespace blade::test;
using namespace blade::test::net;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// ---- reading the kernel back ----------------------------------------------

// One qdisc as a raw RTM_GETQDISC dump gives it.
struct RawQdisc {
  std::string kind;
  std::uint32_t handle = 0;
  std::uint32_t parent = 0;
  std::vector<std::uint8_t> options;  // the TCA_OPTIONS payload
  bool operator==(const RawQdisc &) const = default;
};

std::ostream &operator<<(std::ostream &os, const RawQdisc &q) {
  os << q.kind << " " << std::hex << q.handle << " parent " << q.parent << " options ";
  for (auto b : q.options)
    os << (b < 16 ? "0" : "") << int(b);
  return os << std::dec;
}

// Every qdisc of `dev` in the calling thread's namespace, in dump order.
std::vector<RawQdisc> raw_qdiscs(const std::string &dev) {
  const int ifindex = static_cast<int>(::if_nametoindex(dev.c_str()));
  REQUIRE_MESSAGE(ifindex > 0, "no interface " << dev);
  const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  REQUIRE(fd >= 0);
  struct {
    nlmsghdr h;
    tcmsg t;
  } req{};
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = RTM_GETQDISC;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = 1;
  req.t.tcm_family = AF_UNSPEC;
  REQUIRE(::send(fd, &req, sizeof req, 0) == static_cast<ssize_t>(sizeof req));
  std::vector<RawQdisc> out;
  std::vector<char> buf(1 << 16);
  bool done = false;
  while (!done) {
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    REQUIRE(n > 0);
    int len = static_cast<int>(n);
    for (auto *h = reinterpret_cast<nlmsghdr *>(buf.data()); NLMSG_OK(h, len);
         h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
        done = true;
        break;
      }
      if (h->nlmsg_type != RTM_NEWQDISC) continue;
      auto *t = static_cast<tcmsg *>(NLMSG_DATA(h));
      if (t->tcm_ifindex != ifindex) continue;
      RawQdisc q;
      q.handle = t->tcm_handle;
      q.parent = t->tcm_parent;
      int alen = static_cast<int>(NLMSG_PAYLOAD(h, sizeof(tcmsg)));
      for (auto *a = TCA_RTA(t); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
        const auto *p = static_cast<const std::uint8_t *>(RTA_DATA(a));
        if (a->rta_type == TCA_KIND) q.kind = reinterpret_cast<const char *>(p);
        if (a->rta_type == TCA_OPTIONS) q.options.assign(p, p + RTA_PAYLOAD(a));
      }
      out.push_back(std::move(q));
    }
  }
  ::close(fd);
  return out;
}

// TCA_NETEM_LATENCY64 (ns) in netem's options: after struct tc_netem_qopt,
// attributes; -1 when absent.
long long netem_latency64(const std::vector<std::uint8_t> &options) {
  std::size_t at = NLA_ALIGN(sizeof(tc_netem_qopt));
  while (at + NLA_HDRLEN <= options.size()) {
    nlattr a{};
    std::memcpy(&a, options.data() + at, sizeof a);
    if (a.nla_len < NLA_HDRLEN) break;
    if (a.nla_type == TCA_NETEM_LATENCY64 && a.nla_len >= NLA_HDRLEN + 8) {
      long long v = 0;
      std::memcpy(&v, options.data() + at + NLA_HDRLEN, 8);
      return v;
    }
    at += NLA_ALIGN(a.nla_len);
  }
  return -1;
}

// argv's output (no shell; argv[0] looked up in the usual bin dirs), run in
// the calling thread's namespace.
std::string capture(std::vector<std::string> argv) {
  static TempDir dir("netem-tc");
  const std::filesystem::path out = dir / "out";
  std::filesystem::remove(out);
  for (const char *bin : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"})
    if (::access((bin + argv[0]).c_str(), X_OK) == 0) {
      argv[0] = bin + argv[0];
      break;
    }
  ChildProcess child(argv, {}, out.string());
  REQUIRE(child.exit_code(std::chrono::seconds(20)).has_value());
  return read_text(out);
}

// `tc -j qdisc show dev` as JSON, the root first.
json tc_qdiscs(const std::string &dev) {
  return json::parse(capture({"tc", "-j", "-d", "qdisc", "show", "dev", dev}), nullptr, false);
}

json root_of(const std::string &dev) {
  for (const auto &q : tc_qdiscs(dev))
    if (q.value("root", false)) return q;
  return json();
}

std::string filters_text(const std::string &dev, const std::string &parent) {
  return capture({"tc", "filter", "show", "dev", dev, "parent", parent});
}

// Everything the tests compare before and after: the raw qdisc dump and
// the filters at Blade's handle (none unless something is left).
struct TcState {
  std::vector<RawQdisc> qdiscs;
  std::string filters;
  bool operator==(const TcState &) const = default;
};

std::ostream &operator<<(std::ostream &os, const TcState &s) {
  for (const auto &q : s.qdiscs)
    os << "[" << q << "] ";
  return os << "filters: " << s.filters;
}

TcState tc_state(const std::string &dev) {
  return {raw_qdiscs(dev), filters_text(dev, "b1ad:")};
}

// Packets through the netem qdisc of `dev` so far (its counter; 0 if none).
std::uint64_t netem_packets(const std::string &dev) {
  const json all =
      json::parse(capture({"tc", "-s", "-j", "qdisc", "show", "dev", dev}), nullptr, false);
  for (const auto &q : all)
    if (q.value("kind", "") == "netem") return q.value("packets", std::uint64_t{0});
  return 0;
}

// `n` UDP datagrams to ip:port from the calling thread's namespace.
void send_udp(const std::string &ip, int port, int n) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  REQUIRE(::inet_pton(AF_INET, ip.c_str(), &to.sin_addr) == 1);
  for (int i = 0; i < n; ++i) {
    ::sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr *>(&to), sizeof to);
    std::this_thread::sleep_for(2ms);
  }
  ::close(fd);
}

// ---- the rig: two namespaces, a veth, bladed born in the first ------------

BladedOptions network_options() {
  return only_plugin(std::filesystem::path(BLADE_BUILT_PLUGIN_DIR) / "network.so");
}

struct Rig {
  NetNs a{"bnetem"};
  NetNs b{"bnetem-peer"};
  VethPair veth{a, b, "10.77.0.1", "10.77.0.2"};
  std::unique_ptr<EnterNetNs> inside = std::make_unique<EnterNetNs>(a);
  BladedProcess d{network_options()};
  std::string dev = veth.a_if;

  std::filesystem::path netem_state() const {
    return d.dir / "state" / "plugins" / "network" / "netem";
  }
  // No record or claim of any experiment left under the plugin's state.
  bool no_state_left() const {
    namespace fs = std::filesystem;
    for (const char *sub : {"experiments", "claims"}) {
      std::error_code ec;
      const fs::path p = netem_state() / sub;
      if (fs::exists(p, ec) && !fs::is_empty(p, ec)) return false;
    }
    return true;
  }
};

json with(json flags, const std::string &dev) {
  flags["interface"] = dev;
  return flags;
}

Answer make(httplib::Client &c, const std::string &action, const json &flags,
            bool dry_run = false) {
  return create(c, "network", action, flags, dry_run);
}

// Creates, expects `status` with `text` in the message (or the field), and
// the interface's qdiscs and filters still `before`, no state left.
void refused(Rig &r, httplib::Client &c, const std::string &action, const json &flags, int status,
             const std::string &text, const TcState &before) {
  const Answer a = make(c, action, flags);
  INFO(action << " " << flags.dump() << " -> " << a.status << " " << a.body.dump());
  CHECK(a.status == status);
  CHECK((a.field() == text || a.message().find(text) != std::string::npos));
  CHECK(tc_state(r.dev) == before);
  CHECK(r.no_state_left());
}

}  // namespace

// ---- host: the kernel has no netem, no prio --------------------------------

TEST_CASE(
    "netem on a kernel without sch_netem or sch_prio: 422 naming the module, nothing changed") {
  Rig r;
  auto c = r.d.client();
  const TcState before = tc_state(r.dev);
  REQUIRE(!before.qdiscs.empty());
  CHECK(before.qdiscs[0].kind == "noqueue");

  struct Case {
    std::string action;
    json flags;
    std::string module;
  };
  const std::vector<Case> cases = {
      {"delay", {{"time", "100"}, {"include-control-ports", "true"}}, "sch_netem"},
      {"loss", {{"percent", "30"}, {"include-control-ports", "true"}}, "sch_netem"},
      {"delay", {{"time", "100"}}, "sch_prio"},  // the control path: filtered
      {"delay", {{"time", "100"}, {"remote-port", "80,8000-8080"}}, "sch_prio"},
      {"rate", {{"rate", "1mbit"}, {"local-port", "22"}}, "sch_prio"},
  };
  for (const auto &k : cases)
    refused(r, c, k.action, with(k.flags, r.dev), 422,
            k.module + " is not available: modprobe " + k.module, before);

  // A prior root of the user's, forced: the replace fails whole, theirs stays.
  must({"tc", "qdisc", "add", "dev", r.dev, "root", "handle", "5:", "tbf", "rate", "1mbit", "burst",
        "32kbit", "latency", "400ms"});
  const TcState theirs = tc_state(r.dev);
  REQUIRE(theirs.qdiscs[0].kind == "tbf");
  for (const json &flags :
       {json{{"time", "50"}, {"force", "true"}, {"include-control-ports", "true"}},
        json{{"time", "50"}, {"force", "true"}}})
    refused(r, c, "delay", with(flags, r.dev), 422, "is not available: modprobe", theirs);
}

TEST_CASE("netem bad input: 400 naming the flag, nothing changed") {
  Rig r;
  auto c = r.d.client();
  const TcState before = tc_state(r.dev);
  struct Case {
    std::string action;
    json flags;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"delay", {{"interface", "nosuch0"}, {"time", "10"}}, "interface"},
      {"delay", {{"interface", "a/b"}, {"time", "10"}}, "interface"},
      {"delay", {{"interface", "waytoolonginterfacename"}, {"time", "10"}}, "interface"},
      {"delay", {{"time", "0"}}, "time"},
      {"delay", {{"time", "abc"}}, "time"},
      {"delay", {{"time", "10"}, {"correlation", "101"}}, "correlation"},
      {"loss", {{"percent", "101"}}, "percent"},
      {"loss", {{"percent", "-1"}}, "percent"},
      {"loss", json::object(), "percent"},
      {"duplicate", {{"percent", "x"}}, "percent"},
      {"corrupt", {{"percent", "5"}, {"correlation", "200"}}, "correlation"},
      {"reorder", {{"percent", "50"}, {"gap", "0"}}, "gap"},
      {"rate", {{"rate", "fast"}}, "rate"},
      {"rate", {{"rate", "10"}}, "rate"},
      {"rate", {{"rate", "1xbit"}}, "rate"},
      {"rate", {{"rate", "100gbit"}}, "rate"},
      {"delay", {{"time", "10"}, {"remote-port", "0"}}, "remote-port"},
      {"delay", {{"time", "10"}, {"local-port", "90-80"}}, "local-port"},
      {"delay", {{"time", "10"}, {"destination-ip", "10.0.0.300"}}, "destination-ip"},
      {"delay", {{"time", "10"}, {"exclude-ip", "fd00::/200"}}, "exclude-ip"},
      {"delay", {{"time", "10"}, {"protocol", "sctp"}}, "protocol"},
      {"delay", {{"time", "10"}, {"protocol", "icmp"}, {"remote-port", "80"}}, "protocol"},
  };
  for (const auto &k : cases) {
    json flags = k.flags;
    if (!flags.contains("interface")) flags["interface"] = r.dev;
    refused(r, c, k.action, flags, 400, k.field + ":", before);
  }
}

// ---- host: rate (tbf) is in this kernel -------------------------------------

TEST_CASE(
    "network rate on the host: tbf root b1ad:, a prior tbf refused then forced and put back byte "
    "for byte, 409s, recovery") {
  Rig r;
  auto c = r.d.client();
  const TcState pristine = tc_state(r.dev);

  // Dry run: the plan, nothing changed.
  const Answer dry =
      make(c, "rate", with({{"rate", "2mbit"}, {"include-control-ports", "true"}}, r.dev), true);
  CHECK_MESSAGE(dry.status == 200, dry.body.dump());
  CHECK(dry.body.dump().find("tbf") != std::string::npos);
  CHECK(tc_state(r.dev) == pristine);

  const Answer a =
      make(c, "rate", with({{"rate", "2mbit"}, {"include-control-ports", "true"}}, r.dev));
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  const json res = a.body["data"]["result"];
  CHECK(res["structure"]["root"]["kind"] == "tbf");
  CHECK(res["tbf"]["rate_bytes_per_second"] == 250000);
  CHECK(res["prior_root"]["kind"] == "noqueue");
  CHECK(res["prior_root"]["default"] == true);
  json root = root_of(r.dev);
  CHECK(root.value("kind", "") == "tbf");
  CHECK(root.value("handle", "") == "b1ad:");
  CHECK(root["options"].value("rate", 0) == 250000);

  // One fault per interface: a second is a 409 naming the first.
  const Answer second = make(c, "delay", with({{"time", "10"}, {"force", "true"}}, r.dev));
  CHECK(second.status == 409);
  CHECK_MESSAGE(second.message().find(a.uid()) != std::string::npos, second.body.dump());

  check_destroyed(c, a.uid());
  CHECK(tc_state(r.dev) == pristine);
  CHECK(r.no_state_left());
  // The destroy's report, as GET shows it.
  const json report = experiment(c, a.uid())["destroy_result"];
  INFO(report.dump());
  CHECK(report["restored"] == true);
  CHECK(report["interface"] == r.dev);
  CHECK(report.value("note", "").find("default noqueue is back") != std::string::npos);
  check_destroyed(c, a.uid());  // twice is fine

  // A root qdisc of the user's: refused without force, naming it.
  must({"tc", "qdisc", "add", "dev", r.dev, "root", "handle", "5:", "tbf", "rate", "1mbit", "burst",
        "32kbit", "latency", "400ms"});
  const TcState theirs = tc_state(r.dev);
  const Answer refused =
      make(c, "rate", with({{"rate", "3mbit"}, {"include-control-ports", "true"}}, r.dev));
  CHECK(refused.status == 409);
  CHECK_MESSAGE(refused.message().find("tbf 5:") != std::string::npos, refused.body.dump());
  CHECK(refused.message().find("force") != std::string::npos);
  CHECK(tc_state(r.dev) == theirs);

  // Forced: replaced, kept raw in the record, and put back byte for byte.
  const Answer forced =
      make(c, "rate",
           with({{"rate", "3mbit"}, {"force", "true"}, {"include-control-ports", "true"}}, r.dev));
  REQUIRE_MESSAGE(forced.status == 201, forced.body.dump());
  CHECK(forced.body["data"]["result"]["prior_root"]["kind"] == "tbf");
  CHECK(forced.body["data"]["result"]["prior_root"]["handle_text"] == "5:");
  CHECK(root_of(r.dev).value("handle", "") == "b1ad:");
  check_destroyed(c, forced.uid());
  CHECK(tc_state(r.dev) == theirs);
  CHECK(experiment(c, forced.uid())["destroy_result"]["restored"] == true);
  CHECK(experiment(c, forced.uid())["destroy_result"].value("note", "").find("tbf 5: is back") !=
        std::string::npos);

  // Recovery: bladed killed under a forced rate, restarted: theirs is back.
  const Answer k =
      make(c, "rate",
           with({{"rate", "3mbit"}, {"force", "true"}, {"include-control-ports", "true"}}, r.dev));
  REQUIRE_MESSAGE(k.status == 201, k.body.dump());
  r.d.crash();
  CHECK(root_of(r.dev).value("handle", "") == "b1ad:");  // the crash undid nothing
  r.d.restart();
  auto c2 = r.d.client();
  CHECK(wait_destroyed(c2, k.uid()) == "destroyed");
  CHECK(tc_state(r.dev) == theirs);
  CHECK(r.no_state_left());
  CHECK(experiment(c2, k.uid())["destroy_result"]["restored"] == true);  // recovery's report

  // Blade's root removed by hand: destroy is 200 and says nothing was left.
  must({"tc", "qdisc", "del", "dev", r.dev, "root"});
  REQUIRE(tc_state(r.dev) == pristine);
  const json rate = with({{"rate", "2mbit"}, {"include-control-ports", "true"}}, r.dev);
  const Answer removed = make(c2, "rate", rate);
  REQUIRE_MESSAGE(removed.status == 201, removed.body.dump());
  must({"tc", "qdisc", "del", "dev", r.dev, "root"});
  check_destroyed(c2, removed.uid());
  const json gone = experiment(c2, removed.uid())["destroy_result"];
  INFO(gone.dump());
  CHECK(gone["restored"] == false);
  CHECK(gone.value("already_gone", "").find("removed already") != std::string::npos);
  CHECK(gone.value("root_now", "").find("noqueue") == 0);
  CHECK(tc_state(r.dev) == pristine);

  // Replaced by someone else: theirs stays, and the report says why.
  const Answer replaced = make(c2, "rate", rate);
  REQUIRE_MESSAGE(replaced.status == 201, replaced.body.dump());
  must({"tc", "qdisc", "replace", "dev", r.dev, "root", "handle", "7:", "tbf", "rate", "2mbit",
        "burst", "32kbit", "latency", "100ms"});
  const TcState someone = tc_state(r.dev);
  check_destroyed(c2, replaced.uid());
  CHECK(tc_state(r.dev) == someone);
  const json kept = experiment(c2, replaced.uid())["destroy_result"];
  INFO(kept.dump());
  CHECK(kept["restored"] == false);
  CHECK(kept.value("left_alone", "").find("tbf 7:") != std::string::npos);
  CHECK(kept["root_now"] == "tbf 7:");
  CHECK(r.no_state_left());
  must({"tc", "qdisc", "del", "dev", r.dev, "root"});
}

// ---- inside user-mode Linux: netem, prio, u32 -------------------------------

TEST_CASE(
    "netem qdiscs inside a user-mode Linux guest with sch_netem, sch_prio, sch_tbf, cls_u32") {
  UmlOptions o;
  o.modules = {"veth", "sch_netem", "sch_prio", "sch_tbf", "cls_u32"};
  UmlResult g = run_guest_cases("guest: netem*", o);
  MESSAGE("user-mode Linux run took " << g.seconds << " s; guest " << g.summary());
  INFO(g.report());
  CHECK(g.ok());
}

TEST_CASE(
    "guest: netem unfiltered: netem is the root, every action's parameters, nothing left after "
    "destroy" *
    doctest::skip()) {
  Rig r;
  auto c = r.d.client();
  const TcState pristine = tc_state(r.dev);
  struct Case {
    std::string action;
    json flags;
    std::string expect;  // in tc's text of the root
  };
  const std::vector<Case> cases = {
      {"delay",
       {{"time", "100"}, {"offset", "10"}, {"correlation", "25"}},
       "delay 100ms  10ms 25%"},
      {"loss", {{"percent", "30"}}, "loss 30%"},
      {"duplicate", {{"percent", "10"}}, "duplicate 10%"},
      {"corrupt", {{"percent", "5"}}, "corrupt 5%"},
      {"reorder", {{"percent", "50"}, {"gap", "3"}, {"time", "20"}}, "reorder 50%"},
      {"rate", {{"rate", "1mbit"}}, "rate 1Mbit"},
  };
  for (const auto &k : cases) {
    json flags = with(k.flags, r.dev);
    flags["include-control-ports"] = "true";
    const Answer a = make(c, k.action, flags);
    INFO(k.action << " -> " << a.body.dump());
    REQUIRE(a.status == 201);
    const std::string text = capture({"tc", "-d", "qdisc", "show", "dev", r.dev});
    INFO(text);
    const json root = root_of(r.dev);
    CHECK(root.value("handle", "") == "b1ad:");
    CHECK(root.value("kind", "") == (k.action == "rate" ? "tbf" : "netem"));
    CHECK(text.find(k.expect) != std::string::npos);
    CHECK(a.body["data"]["result"]["excluded"].empty());
    check_destroyed(c, a.uid());
    CHECK(tc_state(r.dev) == pristine);
  }
  // A delay beyond the 32-bit tick field (~274 s) is exact through the 64-bit one.
  const Answer big =
      make(c, "delay", with({{"time", "600000"}, {"include-control-ports", "true"}}, r.dev));
  REQUIRE_MESSAGE(big.status == 201, big.body.dump());
  const auto dumped = raw_qdiscs(r.dev);
  REQUIRE(!dumped.empty());
  CHECK_MESSAGE(netem_latency64(dumped[0].options) == 600'000'000'000LL,
                capture({"tc", "qdisc", "show", "dev", r.dev}));
  check_destroyed(c, big.uid());
  CHECK(tc_state(r.dev) == pristine);
  CHECK(r.no_state_left());
}

TEST_CASE(
    "guest: netem filtered: prio b1ad: with netem in band 4, u32 filters for the selection, the "
    "exclusions and the control path" *
    doctest::skip()) {
  Rig r;
  auto c = r.d.client();
  const TcState pristine = tc_state(r.dev);
  // A dry run: the plan and the modules it needs, nothing changed.
  const Answer dry = make(c, "delay", with({{"time", "100"}, {"remote-port", "80"}}, r.dev), true);
  REQUIRE_MESSAGE(dry.status == 200, dry.body.dump());
  CHECK(dry.body.dump().find("cls_u32") != std::string::npos);
  CHECK(dry.body.dump().find("dport 80") != std::string::npos);
  CHECK(tc_state(r.dev) == pristine);
  CHECK(r.no_state_left());
  const Answer a = make(c, "delay",
                        with({{"time", "100"},
                              {"remote-port", "80,8000-8003"},
                              {"destination-ip", "10.77.0.0/24,fd00::/64"},
                              {"exclude-port", "9000"},
                              {"exclude-ip", "10.77.0.9"},
                              {"protocol", "tcp"}},
                             r.dev));
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  const json res = a.body["data"]["result"];
  INFO(res.dump(2));
  CHECK(res["structure"]["root"]["kind"] == "prio");
  CHECK(res["structure"]["root"]["bands"] == 4);
  CHECK(res["structure"]["fault_qdisc"]["kind"] == "netem");
  CHECK(res["netem"]["delay_ms"] == 100);
  // The control path: the daemon's API port and SSH.
  bool api = false, ssh = false;
  for (const auto &e : res["excluded"]) {
    api = api || e.value("port", 0) == r.d.port;
    ssh = ssh || e.value("port", 0) == 22;
  }
  CHECK(api);
  CHECK(ssh);

  // The kernel's view: prio root, netem under band 4.
  bool prio_root = false, netem_leaf = false;
  for (const auto &q : tc_qdiscs(r.dev)) {
    if (q.value("root", false) && q.value("kind", "") == "prio" && q.value("handle", "") == "b1ad:")
      prio_root = q["options"].value("bands", 0) == 4;
    if (q.value("kind", "") == "netem" && q.value("handle", "") == "b1ae:" &&
        q.value("parent", "") == "b1ad:4")
      netem_leaf = true;
  }
  CHECK(prio_root);
  CHECK(netem_leaf);
  const std::string filters = filters_text(r.dev, "b1ad:");
  INFO(filters);
  // flowid b1ad:4 for the selection: ipv4 2 ports (80; 8000/fffc) x 1 net,
  // ipv6 the same; flowid b1ad:1 for exclusions.
  auto count = [&](const std::string &what) {
    std::size_t n = 0;
    for (auto at = filters.find(what); at != std::string::npos; at = filters.find(what, at + 1))
      ++n;
    return n;
  };
  CHECK(count("flowid b1ad:4") == 4);
  CHECK(count("flowid b1ad:1") >=
        2 * 2 + 2 + 1 + 2);  // exclude-port both ways x2 families, ssh, the ip, API
  CHECK(filters.find("match 00500000/0000ffff at 20") ==
        std::string::npos);  // dport is the low half
  CHECK(filters.find("match 00000050/0000ffff at 20") != std::string::npos);
  CHECK(filters.find("match 00001f40/0000fffc at 20") != std::string::npos);  // 8000-8003
  CHECK(filters.find("match 0a4d0000/ffffff00 at 16") != std::string::npos);  // 10.77.0.0/24
  CHECK(filters.find("match 00060000/00ff0000 at 8") != std::string::npos);   // tcp
  CHECK(filters.find("match 23280000/ffff0000 at 20") != std::string::npos);  // sport 9000
  CHECK(filters.find("match 0a4d0009/ffffffff at 16") != std::string::npos);  // exclude-ip

  check_destroyed(c, a.uid());
  CHECK(tc_state(r.dev) == pristine);
  CHECK(r.no_state_left());

  // Only the interface, the control path to spare: a catch-all to band 4.
  const Answer all = make(c, "loss", with({{"percent", "100"}}, r.dev));
  REQUIRE_MESSAGE(all.status == 201, all.body.dump());
  const std::string f2 = filters_text(r.dev, "b1ad:");
  INFO(f2);
  CHECK(f2.find("flowid b1ad:4") != std::string::npos);
  CHECK(f2.find("match 00000000/00000000 at 0") != std::string::npos);
  // The API still answers under 100% loss: its port is spared.
  CHECK(experiment(c, all.uid()).is_object());
  check_destroyed(c, all.uid());
  CHECK(tc_state(r.dev) == pristine);

  // The steering measured: netem's counter sees only the selected packets.
  send_udp(r.veth.b_ip, 5002, 3);  // the neighbour resolved before counting
  const Answer one =
      make(c, "delay", with({{"time", "1"}, {"remote-port", "5001"}, {"protocol", "udp"}}, r.dev));
  REQUIRE_MESSAGE(one.status == 201, one.body.dump());
  send_udp(r.veth.b_ip, 5001, 20);
  send_udp(r.veth.b_ip, 5002, 20);
  std::this_thread::sleep_for(100ms);
  CHECK(netem_packets(r.dev) == 20);
  check_destroyed(c, one.uid());
  // An exclusion: everything but port 5001 (and the control path) delayed.
  const Answer but = make(c, "delay", with({{"time", "1"}, {"exclude-port", "5001"}}, r.dev));
  REQUIRE_MESSAGE(but.status == 201, but.body.dump());
  send_udp(r.veth.b_ip, 5001, 20);
  send_udp(r.veth.b_ip, 5002, 20);
  std::this_thread::sleep_for(100ms);
  const auto seen = netem_packets(r.dev);
  CHECK(seen >= 20);
  CHECK(seen < 30);  // 20, and at most a few IPv6 link-local packets of the veth's own
  check_destroyed(c, but.uid());
  CHECK(tc_state(r.dev) == pristine);
}

TEST_CASE(
    "guest: netem prior root: refused without force, forced, put back byte for byte; 409 for a "
    "second fault" *
    doctest::skip()) {
  Rig r;
  auto c = r.d.client();
  must({"tc", "qdisc", "add", "dev", r.dev, "root", "handle", "5:", "tbf", "rate", "1mbit", "burst",
        "32kbit", "latency", "400ms"});
  const TcState theirs = tc_state(r.dev);
  REQUIRE(theirs.qdiscs[0].kind == "tbf");
  REQUIRE(!theirs.qdiscs[0].options.empty());

  const Answer no = make(c, "delay", with({{"time", "100"}}, r.dev));
  CHECK(no.status == 409);
  CHECK_MESSAGE(no.message().find("tbf 5:") != std::string::npos, no.body.dump());
  CHECK(tc_state(r.dev) == theirs);

  for (const json &extra : {json{{"include-control-ports", "true"}}, json{{"remote-port", "80"}}}) {
    json flags = with({{"time", "100"}, {"force", "true"}}, r.dev);
    flags.update(extra);
    const Answer a = make(c, "delay", flags);
    REQUIRE_MESSAGE(a.status == 201, a.body.dump());
    CHECK(a.body["data"]["result"]["prior_root"]["kind"] == "tbf");
    CHECK(root_of(r.dev).value("handle", "") == "b1ad:");
    const Answer again = make(c, "loss", with({{"percent", "10"}, {"force", "true"}}, r.dev));
    CHECK(again.status == 409);
    CHECK_MESSAGE(again.message().find(a.uid()) != std::string::npos, again.body.dump());
    check_destroyed(c, a.uid());
    const TcState after = tc_state(r.dev);
    CHECK(after == theirs);  // kind, handle, parent and TCA_OPTIONS bytes
  }
  CHECK(r.no_state_left());
}

TEST_CASE(
    "guest: netem destroy leaves a root someone else put there, and is 200 after a removal by "
    "hand" *
    doctest::skip()) {
  Rig r;
  auto c = r.d.client();
  const TcState pristine = tc_state(r.dev);
  const Answer a = make(c, "delay", with({{"time", "50"}}, r.dev));
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  must({"tc", "qdisc", "del", "dev", r.dev, "root"});
  check_destroyed(c, a.uid());
  CHECK(tc_state(r.dev) == pristine);
  CHECK(r.no_state_left());
  CHECK(experiment(c, a.uid())["destroy_result"].value("already_gone", "").find(
            "removed already") != std::string::npos);

  const Answer b =
      make(c, "delay", with({{"time", "50"}, {"include-control-ports", "true"}}, r.dev));
  REQUIRE_MESSAGE(b.status == 201, b.body.dump());
  must({"tc", "qdisc", "replace", "dev", r.dev, "root", "handle", "7:", "tbf", "rate", "2mbit",
        "burst", "32kbit", "latency", "100ms"});
  const TcState someone = tc_state(r.dev);
  check_destroyed(c, b.uid());
  CHECK(tc_state(r.dev) == someone);  // theirs, left alone
  CHECK(r.no_state_left());
  const json kept = experiment(c, b.uid())["destroy_result"];
  INFO(kept.dump());
  CHECK(kept["restored"] == false);
  CHECK(kept["root_now"] == "tbf 7:");
  CHECK(kept.value("left_alone", "").find("not Blade's netem b1ad:") != std::string::npos);

  // Blade's mark with no experiment owning it (a leftover): 409 unless
  // force; forced, destroy deletes it and the default is back.
  must({"tc", "qdisc", "del", "dev", r.dev, "root"});
  must({"tc", "qdisc", "add", "dev", r.dev, "root", "handle", "b1ad:", "netem", "delay", "1ms"});
  const Answer left = make(c, "loss", with({{"percent", "5"}}, r.dev));
  CHECK(left.status == 409);
  CHECK_MESSAGE(left.message().find("no active experiment owns") != std::string::npos,
                left.body.dump());
  const Answer over = make(c, "loss", with({{"percent", "5"}, {"force", "true"}}, r.dev));
  REQUIRE_MESSAGE(over.status == 201, over.body.dump());
  check_destroyed(c, over.uid());
  CHECK(tc_state(r.dev) == pristine);
}

TEST_CASE("guest: netem recovery: bladed killed with a delay active, restarted: the qdisc is gone" *
          doctest::skip()) {
  Rig r;
  auto c = r.d.client();
  const TcState pristine = tc_state(r.dev);
  const Answer a = make(c, "delay", with({{"time", "100"}, {"remote-port", "80"}}, r.dev));
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  r.d.crash();
  std::this_thread::sleep_for(200ms);
  CHECK(root_of(r.dev).value("handle", "") == "b1ad:");
  r.d.restart();
  auto c2 = r.d.client();
  CHECK(wait_destroyed(c2, a.uid()) == "destroyed");
  CHECK(tc_state(r.dev) == pristine);
  CHECK(r.no_state_left());
}

#ifdef BLADE_FAILPOINTS
TEST_CASE(
    "guest: netem failpoints: bladed killed at each step of a forced, filtered create or of its "
    "destroy leaves the prior root once it starts again" *
    doctest::skip()) {
  Rig r;
  must({"tc", "qdisc", "add", "dev", r.dev, "root", "handle", "5:", "tbf", "rate", "1mbit", "burst",
        "32kbit", "latency", "400ms"});
  const TcState theirs = tc_state(r.dev);
  const json body = {
      {"target", "network"},
      {"action", "delay"},
      {"flags", with({{"time", "100"}, {"force", "true"}, {"remote-port", "80"}}, r.dev)}};
  os::killed_at_each(
      r.d,
      {"network.netem.create.after_record", "network.netem.create.after_root",
       "network.netem.create.after_leaf", "network.netem.create.after_install",
       "network.netem.destroy.before_restore", "network.netem.destroy.after_restore"},
      body, [&] { CHECK(root_of(r.dev).value("handle", "") == "b1ad:"); },
      [&] {
        CHECK(tc_state(r.dev) == theirs);
        CHECK(r.no_state_left());
      });
}
#endif

// Last in this file (doctest runs the cases in file order): it unloads
// modules, which the guest cannot load again (their directory is gone).
TEST_CASE(
    "guest: netem zz a step refused part-way (module unloaded) puts the prior root back: 422, "
    "nothing changed" *
    doctest::skip()) {
  Rig r;
  auto c = r.d.client();
  must({"tc", "qdisc", "add", "dev", r.dev, "root", "handle", "5:", "tbf", "rate", "1mbit", "burst",
        "32kbit", "latency", "400ms"});
  const TcState theirs = tc_state(r.dev);
  // cls_u32 gone: prio and netem go on, the first filter is refused.
  REQUIRE(run({"rmmod", "cls_u32"}) == 0);
  refused(r, c, "delay", with({{"time", "100"}, {"force", "true"}, {"remote-port", "80"}}, r.dev),
          422, "cls_u32 is not available: modprobe cls_u32", theirs);
  // sch_netem gone: prio goes on, netem is refused.
  REQUIRE(run({"rmmod", "sch_netem"}) == 0);
  refused(r, c, "delay", with({{"time", "100"}, {"force", "true"}}, r.dev), 422,
          "sch_netem is not available: modprobe sch_netem", theirs);
  // And over the kernel's default, which is deleted back.
  must({"tc", "qdisc", "del", "dev", r.dev, "root"});
  const TcState pristine = tc_state(r.dev);
  refused(r, c, "loss", with({{"percent", "10"}, {"exclude-port", "8080"}}, r.dev), 422,
          "sch_netem is not available", pristine);
  // The refusals left no claim behind: a fault the kernel can still do goes on.
  const Answer ok =
      make(c, "rate", with({{"rate", "1mbit"}, {"include-control-ports", "true"}}, r.dev));
  REQUIRE_MESSAGE(ok.status == 201, ok.body.dump());
  check_destroyed(c, ok.uid());
  CHECK(tc_state(r.dev) == pristine);
}
