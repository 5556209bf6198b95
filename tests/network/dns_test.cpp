// network dns and network dns_down against a real bladed, measured through
// getaddrinfo: bladed, the test's own DNS server and the test all run in a
// network namespace and a mount namespace the test made, with private
// /etc/hosts and /etc/resolv.conf (dns_test_support.hpp), so nothing of
// the host's resolver is touched.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iterator>
#include <random>
#include <string>
#include <thread>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "../support/eventually.hpp"
#include "bladed_process.hpp"
#include "dns_test_support.hpp"
#include "experiment_calls.hpp"

namespace fs = std::filesystem;
using namespace blade::test;
using namespace blade::test::dns;
using nlohmann::json;

namespace {

const std::string kHosts = "127.0.0.1\tlocalhost\n# the test's own hosts file\n::1 localhost\n";
// "the" nameserver: the test's TinyDnsServer. One try, one second: a
// failure shows at once instead of after the C library's retries.
const std::string kResolvConf =
    "# the test's own resolv.conf\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n";
const std::map<std::string, std::string> kRecords = {{"www.blade-dns.test", "10.20.30.40"},
                                                     {"allowed.test", "10.1.2.3"},
                                                     {"api.allowed.test", "10.1.2.4"},
                                                     {"blocked.test", "10.9.9.9"}};

BladedOptions network_options() {
  return only_plugin(fs::path(BLADE_BUILT_PLUGIN_DIR) / "network.so");
}

// A netns with the test's DNS server and private resolver files, the
// calling thread inside it while the object lives.
struct DnsWorld {
  net::NetNs ns{"bdns"};
  net::EnterNetNs inside{ns};
  PrivateEtc etc;
  TinyDnsServer server{kRecords};
  explicit DnsWorld(PrivateEtc::Kind kind, const std::string &hosts = kHosts,
                    const std::string &resolv = kResolvConf)
      : etc(kind, hosts, resolv) {}
};

// An experiment created: 201, or the test stops with the answer.
Answer must_create(httplib::Client &c, const std::string &target, const std::string &action,
                   const json &flags) {
  Answer a = create(c, target, action, flags);
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  return a;
}

json dns_flags(const std::string &domain, const std::string &ip) {
  return {{"domain", domain}, {"ip", ip}};
}

// The uid of the daemon's one experiment, once it is listed (a create in
// flight, or one a crash interrupted).
std::string listed_uid(httplib::Client &c) {
  std::string uid;
  REQUIRE(eventually([&] {
    const auto got = c.Get("/v1/experiments", auth());
    const json body = got && got->status == 200 ? json::parse(got->body, nullptr, false) : json();
    if (!body.is_object() || body["data"]["items"].size() != 1) return false;
    uid = body["data"]["items"][0].value("uid", "");
    return !uid.empty();
  }));
  return uid;
}

// Leftover temp files of the plugin beside the resolver files.
int temp_files_in_etc() {
  int n = 0;
  for (const auto &e : fs::directory_iterator("/etc"))
    if (e.path().filename().string().find(".blade-") != std::string::npos) ++n;
  return n;
}

std::string hosts_line(const std::string &ip, const std::string &domain, const std::string &uid) {
  return ip + " " + domain + " # blade:" + uid;
}

// The plugin's local copy of the experiment's restore record.
fs::path local_record_dir(const BladedProcess &d, const std::string &uid) {
  return d.dir / "state" / "plugins" / "network" / "dns" / uid;
}

}  // namespace

TEST_CASE("dns: getaddrinfo answers the injected ip, then the real one; the rest as it is now") {
  DnsWorld w(PrivateEtc::Kind::Overlay);
  REQUIRE(::chown("/etc/hosts", 1234, 1234) == 0);
  REQUIRE(::chmod("/etc/hosts", 0640) == 0);
  REQUIRE(resolve("www.blade-dns.test") == "10.20.30.40");  // through DNS: the real one
  const ino_t before_inode = inode_of("/etc/hosts");

  BladedProcess d(network_options());
  auto c = d.client();
  auto a = must_create(c, "network", "dns", dns_flags("WWW.Blade-DNS.test", "10.0.0.1"));
  const std::string uid = a.uid();
  const std::string line = hosts_line("10.0.0.1", "www.blade-dns.test", uid);
  CHECK(a.body["data"]["result"]["written"] == "rename");
  CHECK(a.body["data"]["result"]["line"] == line);
  CHECK(read_text("/etc/hosts") == kHosts + line + "\n");
  CHECK(resolve("www.blade-dns.test") == "10.0.0.1");
  CHECK(resolve("WWW.BLADE-DNS.TEST") == "10.0.0.1");
  // Renamed into place, owner and mode kept.
  struct stat st {};
  REQUIRE(::stat("/etc/hosts", &st) == 0);
  CHECK(st.st_ino != before_inode);
  CHECK(st.st_uid == 1234);
  CHECK(st.st_gid == 1234);
  CHECK((st.st_mode & 07777) == 0640);

  // Someone edits the file while the fault is on: the edit stays.
  const std::string added = "192.0.2.7 other.test\n";
  write_file("/etc/hosts", read_text("/etc/hosts") + added);
  CHECK(resolve("other.test") == "192.0.2.7");

  check_destroyed(c, uid);
  CHECK(read_text("/etc/hosts") == kHosts + added);
  CHECK(resolve("www.blade-dns.test") == "10.20.30.40");
  CHECK(resolve("other.test") == "192.0.2.7");
  REQUIRE(::stat("/etc/hosts", &st) == 0);
  CHECK(st.st_uid == 1234);
  CHECK((st.st_mode & 07777) == 0640);
  CHECK(temp_files_in_etc() == 0);
  CHECK_FALSE(fs::exists(local_record_dir(d, uid)));
  check_destroyed(c, uid);  // again: nothing left to undo, still 200
  CHECK(read_text("/etc/hosts") == kHosts + added);
}

TEST_CASE("dns: only the marked line goes; a file without a final newline keeps that") {
  DnsWorld w(PrivateEtc::Kind::Overlay, "127.0.0.1 localhost");
  BladedProcess d(network_options());
  auto c = d.client();
  auto one = must_create(c, "network", "dns", dns_flags("one.test", "10.0.0.1"));
  auto two = must_create(c, "network", "dns", dns_flags("two.test", "fd00::2"));
  const std::string l1 = hosts_line("10.0.0.1", "one.test", one.uid());
  const std::string l2 = hosts_line("fd00::2", "two.test", two.uid());
  CHECK(read_text("/etc/hosts") == "127.0.0.1 localhost\n" + l1 + "\n" + l2);
  CHECK(resolve("one.test") == "10.0.0.1");
  check_destroyed(c, one.uid());  // the first of two: the second stays whole
  CHECK(read_text("/etc/hosts") == "127.0.0.1 localhost\n" + l2);
  CHECK(resolve("one.test") == "EAI_NONAME");
  check_destroyed(c, two.uid());
  CHECK(read_text("/etc/hosts") == "127.0.0.1 localhost");
}

TEST_CASE("dns: a hosts file that is a mount point (a container's) is rewritten in place") {
  DnsWorld w(PrivateEtc::Kind::BindFiles);
  const ino_t inode = inode_of("/etc/hosts");
  BladedProcess d(network_options());
  auto c = d.client();
  auto a = must_create(c, "network", "dns", dns_flags("www.blade-dns.test", "10.0.0.9"));
  CHECK(a.body["data"]["result"]["written"] == "in-place");
  CHECK(inode_of("/etc/hosts") == inode);
  CHECK(read_text("/etc/hosts") ==
        kHosts + hosts_line("10.0.0.9", "www.blade-dns.test", a.uid()) + "\n");
  CHECK(resolve("www.blade-dns.test") == "10.0.0.9");
  check_destroyed(c, a.uid());
  CHECK(read_text("/etc/hosts") == kHosts);
  CHECK(inode_of("/etc/hosts") == inode);
  CHECK(resolve("www.blade-dns.test") == "10.20.30.40");
}

TEST_CASE("dns and dns_down: bad input is a 400 naming the field, the files untouched") {
  DnsWorld w(PrivateEtc::Kind::Overlay);
  BladedProcess d(network_options());
  auto c = d.client();
  for (const std::string &domain : std::vector<std::string>{
           "bad domain", "a#b", "evil.test\n10.6.6.6 bank.test", "-lead.test", "a..b", ".",
           "x_y.test", std::string(64, 'a') + ".test", std::string(250, 'a') + ".test"}) {
    CAPTURE(domain);
    auto a = create(c, "network", "dns", {{"domain", domain}, {"ip", "10.0.0.1"}});
    CHECK(a.status == 400);
    CHECK(a.field() == "flags.domain");
  }
  for (const std::string ip : {"10.0.0.300", "not-an-ip", "10.0.0.1 evil.test"}) {
    CAPTURE(ip);
    auto a = create(c, "network", "dns", {{"domain", "ok.test"}, {"ip", ip}});
    CHECK(a.status == 400);
    CHECK(a.field() == "flags.ip");
  }
  for (const std::string allow : {"ok.test,bad domain", "a#b"}) {
    CAPTURE(allow);
    auto a = create(c, "network", "dns_down", {{"allow_domain", allow}});
    INFO(a.body.dump());
    CHECK(a.status == 400);
    CHECK(a.field() == "flags.allow_domain");
  }
  CHECK(read_text("/etc/hosts") == kHosts);
  CHECK(read_text("/etc/resolv.conf") == kResolvConf);
  CHECK(temp_files_in_etc() == 0);
}

TEST_CASE("dns: a domain the hosts file names already is refused (422), the file untouched") {
  const std::string hosts = kHosts + "10.7.7.7 Www.Blade-Dns.Test www\n";
  DnsWorld w(PrivateEtc::Kind::Overlay, hosts);
  BladedProcess d(network_options());
  auto c = d.client();
  for (const bool dry : {false, true}) {
    CAPTURE(dry);
    auto a = create(c, "network", "dns", dns_flags("www.blade-dns.test", "10.0.0.1"), dry);
    INFO(a.body.dump());
    // A dry run answers 200 with the refusal as its note.
    CHECK(a.status == (dry ? 200 : 422));
    const std::string why = dry ? a.body["data"].value("note", "") : a.message();
    CHECK(why.find("10.7.7.7 Www.Blade-Dns.Test www") != std::string::npos);
    CHECK(why.find("replace") != std::string::npos);  // says what overrides it
  }
  CHECK(read_text("/etc/hosts") == hosts);
  // The refusal took no claim: another name is free, and so is this one
  // once the file no longer names it.
  write_file("/etc/hosts", kHosts);
  auto ok = must_create(c, "network", "dns", dns_flags("www.blade-dns.test", "10.0.0.1"));
  check_destroyed(c, ok.uid());
  CHECK(read_text("/etc/hosts") == kHosts);
}

TEST_CASE("dns: a domain list maps every name to the ip, one line; claims per name") {
  DnsWorld w(PrivateEtc::Kind::Overlay);
  BladedProcess d(network_options());
  auto c = d.client();
  // A bad element is a 400 naming the field and the element.
  auto bad = create(c, "network", "dns", dns_flags("ok.test,bad_name.test", "10.0.0.1"));
  CHECK(bad.status == 400);
  CHECK(bad.field() == "flags.domain");
  CHECK_MESSAGE(bad.message().find("bad_name.test") != std::string::npos, bad.message());
  CHECK(read_text("/etc/hosts") == kHosts);

  // Duplicates (case aside) folded, the order kept.
  auto a = must_create(c, "network", "dns",
                       dns_flags("www.blade-dns.test,Other.test,WWW.blade-dns.test", "10.0.0.1"));
  const std::string line = "10.0.0.1 www.blade-dns.test other.test # blade:" + a.uid();
  CHECK(a.body["data"]["result"]["line"] == line);
  CHECK(a.body["data"]["result"]["replaced"] == json::array());
  CHECK(read_text("/etc/hosts") == kHosts + line + "\n");
  CHECK(resolve("www.blade-dns.test") == "10.0.0.1");
  CHECK(resolve("other.test") == "10.0.0.1");

  // One name of a list already taken: 409 naming the owner, and the other
  // names of that list are not held by the refused one.
  auto second = create(c, "network", "dns", dns_flags("third.test,other.test", "10.0.0.2"));
  CHECK(second.status == 409);
  CHECK_MESSAGE(second.message().find(a.uid()) != std::string::npos, second.message());
  auto third = must_create(c, "network", "dns", dns_flags("third.test", "10.0.0.3"));
  CHECK(resolve("third.test") == "10.0.0.3");
  check_destroyed(c, third.uid());

  check_destroyed(c, a.uid());
  CHECK(read_text("/etc/hosts") == kHosts);
  CHECK(resolve("www.blade-dns.test") == "10.20.30.40");
  CHECK(resolve("other.test") == "EAI_NONAME");
}

TEST_CASE("dns replace: the user's line hidden while it runs, back byte for byte after") {
  const std::string users = "10.7.7.7 www.blade-dns.test\n";
  const std::string hosts = kHosts + users + "# after\n";
  for (const auto kind : {PrivateEtc::Kind::Overlay, PrivateEtc::Kind::BindFiles}) {
    CAPTURE(static_cast<int>(kind));
    DnsWorld w(kind, hosts);
    REQUIRE(resolve("www.blade-dns.test") == "10.7.7.7");  // the file's, before DNS
    BladedProcess d(network_options());
    auto c = d.client();
    const json flags = {{"domain", "www.blade-dns.test"}, {"ip", "10.0.0.1"}, {"replace", true}};
    // A dry run says what it would hide, and writes nothing.
    auto dry = create(c, "network", "dns", flags, true);
    INFO(dry.body.dump());
    CHECK(dry.status == 200);
    CHECK(dry.body.dump().find("\"line\":\"10.7.7.7 www.blade-dns.test\"") != std::string::npos);
    CHECK(read_text("/etc/hosts") == hosts);

    auto a = must_create(c, "network", "dns", flags);
    const std::string uid = a.uid();
    const std::string line = hosts_line("10.0.0.1", "www.blade-dns.test", uid);
    CHECK(a.body["data"]["result"]["replaced"] ==
          json::array({{{"line", "10.7.7.7 www.blade-dns.test"},
                        {"names", json::array({"www.blade-dns.test"})}}}));
    CHECK(read_text("/etc/hosts") ==
          kHosts + "#blade:" + uid + " " + users + "# after\n" + line + "\n");
    CHECK(resolve("www.blade-dns.test") == "10.0.0.1");

    // Someone adds a line meanwhile: it stays.
    const std::string added = "192.0.2.7 other.test\n";
    write_file("/etc/hosts", read_text("/etc/hosts") + added);
    check_destroyed(c, uid);
    CHECK(read_text("/etc/hosts") == hosts + added);
    CHECK(resolve("www.blade-dns.test") == "10.7.7.7");
    CHECK(resolve("other.test") == "192.0.2.7");
    CHECK(temp_files_in_etc() == 0);
  }
}

TEST_CASE("dns replace: a line naming another host too keeps answering for that one") {
  const std::string hosts = kHosts + "10.7.7.7 keep.test www.blade-dns.test alias.test";
  DnsWorld w(PrivateEtc::Kind::Overlay, hosts);  // its last line without a newline
  REQUIRE(resolve("keep.test") == "10.7.7.7");
  REQUIRE(resolve("www.blade-dns.test") == "10.7.7.7");
  BladedProcess d(network_options());
  auto c = d.client();
  auto a = must_create(c, "network", "dns",
                       {{"domain", "www.blade-dns.test"}, {"ip", "10.0.0.1"}, {"replace", true}});
  const auto replaced = a.body["data"]["result"]["replaced"];
  REQUIRE(replaced.size() == 1);
  CHECK(replaced[0]["line"] == "10.7.7.7 keep.test www.blade-dns.test alias.test");
  CHECK(replaced[0]["kept"] == "10.7.7.7 keep.test alias.test");
  CHECK(resolve("www.blade-dns.test") == "10.0.0.1");
  CHECK(resolve("keep.test") == "10.7.7.7");
  CHECK(resolve("alias.test") == "10.7.7.7");
  check_destroyed(c, a.uid());
  CHECK(read_text("/etc/hosts") == hosts);
  CHECK(resolve("www.blade-dns.test") == "10.7.7.7");
  CHECK(resolve("keep.test") == "10.7.7.7");
}

TEST_CASE("dns and dns_down: a dry run says what would be written and writes nothing") {
  DnsWorld w(PrivateEtc::Kind::Overlay);
  BladedProcess d(network_options());
  auto c = d.client();
  auto a = create(c, "network", "dns", dns_flags("www.blade-dns.test", "10.0.0.1"), true);
  INFO(a.body.dump());
  CHECK(a.status == 200);
  CHECK(a.body.dump().find("10.0.0.1 www.blade-dns.test # blade:") != std::string::npos);
  auto b = create(c, "network", "dns_down", {{"allow_domain", "allowed.test"}}, true);
  INFO(b.body.dump());
  CHECK(b.status == 200);
  CHECK(b.body.dump().find("\"upstreams\":[\"127.0.0.1\"]") != std::string::npos);
  CHECK(read_text("/etc/hosts") == kHosts);
  CHECK(read_text("/etc/resolv.conf") == kResolvConf);
  CHECK(resolve("blocked.test") == "10.9.9.9");
}

TEST_CASE("dns: a second experiment on the same domain is refused with 409 naming the first") {
  DnsWorld w(PrivateEtc::Kind::Overlay);
  BladedProcess d(network_options());
  auto c = d.client();
  auto first = must_create(c, "network", "dns", dns_flags("www.blade-dns.test", "10.0.0.1"));
  const std::string during = read_text("/etc/hosts");
  auto second = create(c, "network", "dns", dns_flags("WWW.blade-dns.TEST", "10.0.0.2"));
  CHECK(second.status == 409);
  CHECK_MESSAGE(second.message().find(first.uid()) != std::string::npos, second.message());
  CHECK(read_text("/etc/hosts") == during);
  check_destroyed(c, first.uid());
  // Once the first is gone the domain is free again.
  auto third = must_create(c, "network", "dns", dns_flags("www.blade-dns.test", "10.0.0.3"));
  CHECK(resolve("www.blade-dns.test") == "10.0.0.3");
  check_destroyed(c, third.uid());
  CHECK(read_text("/etc/hosts") == kHosts);
}

// dns_down, over UDP and then with `options use-vc` (the C library asks
// over TCP only), which the stub resolver serves and forwards alike.
TEST_CASE("dns_down: allowed names resolve, every other fails; destroy restores resolv.conf") {
  for (const bool tcp : {false, true}) {
    CAPTURE(tcp);
    const std::string resolv = tcp ? kResolvConf + "options use-vc\n" : kResolvConf;
    DnsWorld w(PrivateEtc::Kind::Overlay, kHosts, resolv);
    REQUIRE(resolve("allowed.test") == "10.1.2.3");
    REQUIRE(resolve("blocked.test") == "10.9.9.9");
    const int tcp_before = w.server.tcp_queries();

    BladedProcess d(network_options());
    auto c = d.client();
    auto a = must_create(c, "network", "dns_down", {{"allow_domain", "Allowed.test,other.test"}});
    const auto result = a.body["data"]["result"];
    const std::string stub = result.value("nameserver", "");
    CHECK(result["upstreams"] == json::array({"127.0.0.1"}));
    CHECK(result["allowed"] == json::array({"allowed.test", "other.test"}));
    CHECK(result["written"] == "rename");
    const std::string during = read_text("/etc/resolv.conf");
    CHECK(during.find("#blade:" + a.uid() + " nameserver 127.0.0.1\n") != std::string::npos);
    CHECK(during.find("nameserver " + stub + " # blade:" + a.uid()) != std::string::npos);

    const int blocked_before = w.server.queries("blocked.test");
    CHECK(resolve("allowed.test") == "10.1.2.3");
    CHECK(resolve("api.allowed.test") == "10.1.2.4");  // under an allowed domain
    // SERVFAIL: over UDP glibc reports it as a temporary failure, over
    // TCP as no such name; either way no address.
    const std::string failure = tcp ? "EAI_NONAME" : "EAI_AGAIN";
    CHECK(resolve("blocked.test") == failure);
    CHECK(resolve("notallowed.test") == failure);
    CHECK(resolve("www.blade-dns.test") == failure);
    CHECK(resolve("localhost") == "127.0.0.1");  // the hosts file still answers
    // The refused names never reached the nameserver.
    CHECK(w.server.queries("blocked.test") == blocked_before);
    if (tcp) CHECK(w.server.tcp_queries() > tcp_before);

    check_destroyed(c, a.uid());
    CHECK(read_text("/etc/resolv.conf") == resolv);
    CHECK(resolve("blocked.test") == "10.9.9.9");
    CHECK(resolve("allowed.test") == "10.1.2.3");
    CHECK(temp_files_in_etc() == 0);
    check_destroyed(c, a.uid());
    CHECK(read_text("/etc/resolv.conf") == resolv);
  }
}

TEST_CASE("dns_down: nothing allowed, a second one refused with 409, a bind-mounted resolv.conf") {
  DnsWorld w(PrivateEtc::Kind::BindFiles);
  const ino_t inode = inode_of("/etc/resolv.conf");
  BladedProcess d(network_options());
  auto c = d.client();
  auto a = must_create(c, "network", "dns_down", json::object());
  CHECK(a.body["data"]["result"]["written"] == "in-place");
  CHECK(inode_of("/etc/resolv.conf") == inode);
  CHECK(resolve("allowed.test") == "EAI_AGAIN");
  const std::string during = read_text("/etc/resolv.conf");
  auto second = create(c, "network", "dns_down", {{"allow_domain", "allowed.test"}});
  CHECK(second.status == 409);
  CHECK_MESSAGE(second.message().find(a.uid()) != std::string::npos, second.message());
  CHECK(read_text("/etc/resolv.conf") == during);
  check_destroyed(c, a.uid());
  CHECK(read_text("/etc/resolv.conf") == kResolvConf);
  CHECK(inode_of("/etc/resolv.conf") == inode);
  CHECK(resolve("allowed.test") == "10.1.2.3");
}

TEST_CASE(
    "dns_down: a resolv.conf that is a symlink (systemd-resolved's way): the file behind it") {
  DnsWorld w(PrivateEtc::Kind::Overlay);
  fs::create_directories("/etc/blade-dns-run");
  fs::rename("/etc/resolv.conf", "/etc/blade-dns-run/stub-resolv.conf");
  fs::create_symlink("blade-dns-run/stub-resolv.conf", "/etc/resolv.conf");
  BladedProcess d(network_options());
  auto c = d.client();
  auto a = must_create(c, "network", "dns_down", {{"allow_domain", "allowed.test"}});
  CHECK(a.body["data"]["result"]["file"] == "/etc/blade-dns-run/stub-resolv.conf");
  CHECK(fs::is_symlink("/etc/resolv.conf"));
  CHECK(resolve("blocked.test") == "EAI_AGAIN");
  CHECK(resolve("allowed.test") == "10.1.2.3");
  check_destroyed(c, a.uid());
  CHECK(fs::is_symlink("/etc/resolv.conf"));
  CHECK(fs::read_symlink("/etc/resolv.conf") == "blade-dns-run/stub-resolv.conf");
  CHECK(read_text("/etc/blade-dns-run/stub-resolv.conf") == kResolvConf);
  CHECK(resolve("blocked.test") == "10.9.9.9");
  // Nothing beside it: no temp file left in the directory of the real file.
  CHECK(std::distance(fs::directory_iterator("/etc/blade-dns-run"), fs::directory_iterator()) == 1);
}

TEST_CASE("dns_down: garbage sent to the stub resolver harms neither it nor the daemon") {
  DnsWorld w(PrivateEtc::Kind::Overlay);
  BladedProcess d(network_options());
  auto c = d.client();
  auto a = must_create(c, "network", "dns_down", {{"allow_domain", "allowed.test"}});
  sockaddr_in stub{};
  stub.sin_family = AF_INET;
  stub.sin_port = htons(53);
  REQUIRE(::inet_pton(AF_INET, a.body["data"]["result"].value("nameserver", "").c_str(),
                      &stub.sin_addr) == 1);
  const auto *to = reinterpret_cast<const sockaddr *>(&stub);
  // UDP: random bytes, truncated headers, responses, a query with a
  // compression loop.
  const int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(udp >= 0);
  std::mt19937 rng(53);
  for (int i = 0; i < 2000; ++i) {
    std::string m(rng() % 600, '\0');
    for (auto &ch : m)
      ch = static_cast<char>(rng());
    ::sendto(udp, m.data(), m.size(), 0, to, sizeof stub);
  }
  const std::string loop = std::string{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0} + "\xc0\x0c";
  ::sendto(udp, loop.data(), loop.size(), 0, to, sizeof stub);
  ::close(udp);
  // TCP: a length with nothing after it, a connection left idle.
  const int idle = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int junk = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(::connect(idle, to, sizeof stub) == 0);
  REQUIRE(::connect(junk, to, sizeof stub) == 0);
  REQUIRE(::send(junk, "\xff\xff\x01", 3, MSG_NOSIGNAL) == 3);
  ::close(junk);
  // Still serving over UDP. A lookup sent while the stub's receive buffer
  // is still full of the flood is dropped by the kernel, as for any DNS
  // server (seen here: the first try lost, 1 s, the next answered), so it
  // is asked until it answers.
  CHECK(eventually([] { return resolve("allowed.test") == "10.1.2.3"; }));
  CHECK(resolve("blocked.test") == "EAI_AGAIN");
  ::close(idle);
  CHECK(experiment(c, a.uid()).value("status", "") == "running");
  check_destroyed(c, a.uid());
  CHECK(read_text("/etc/resolv.conf") == kResolvConf);
}

namespace {

// A dns and a dns_down, both running.
struct BothFaults {
  Answer entry, down;
  explicit BothFaults(httplib::Client &c)
      : entry(must_create(c, "network", "dns", dns_flags("www.blade-dns.test", "10.0.0.1"))),
        down(must_create(c, "network", "dns_down", {{"allow_domain", "allowed.test"}})) {}
};

// Starts the crashed daemon again and checks that its recovery destroyed
// both faults and left both files (and the lookups) as before them.
void check_recovered(BladedProcess &d, const BothFaults &f) {
  d.restart();  // returns once recovery has run
  auto c = d.client();
  CHECK(wait_destroyed(c, f.entry.uid()) == "destroyed");
  CHECK(wait_destroyed(c, f.down.uid()) == "destroyed");
  CHECK(read_text("/etc/hosts") == kHosts);
  CHECK(read_text("/etc/resolv.conf") == kResolvConf);
  CHECK(resolve("www.blade-dns.test") == "10.20.30.40");
  CHECK(resolve("blocked.test") == "10.9.9.9");
  CHECK(temp_files_in_etc() == 0);
}

}  // namespace

TEST_CASE("dns and dns_down survive a SIGKILLed bladed only until it starts again") {
  DnsWorld w(PrivateEtc::Kind::Overlay);
  BladedProcess d(network_options());
  auto c = d.client();
  const BothFaults f(c);
  CHECK(resolve("www.blade-dns.test") == "10.0.0.1");
  CHECK(resolve("blocked.test") == "EAI_AGAIN");

  d.crash();
  // Both edits outlived the daemon (its stub resolver did not: now every
  // name fails, the allowed ones too, until the restart undoes the edit).
  CHECK(read_text("/etc/hosts").find("# blade:" + f.entry.uid()) != std::string::npos);
  CHECK(read_text("/etc/resolv.conf").find("# blade:" + f.down.uid()) != std::string::npos);
  CHECK(resolve("allowed.test") != "10.1.2.3");
  check_recovered(d, f);
}

TEST_CASE("dns replace survives a SIGKILLed bladed only until it starts again") {
  const std::string hosts = kHosts + "10.7.7.7 www.blade-dns.test keep.test\n";
  DnsWorld w(PrivateEtc::Kind::Overlay, hosts);
  BladedProcess d(network_options());
  auto c = d.client();
  auto a = must_create(c, "network", "dns",
                       {{"domain", "www.blade-dns.test"}, {"ip", "10.0.0.1"}, {"replace", true}});
  CHECK(resolve("www.blade-dns.test") == "10.0.0.1");
  d.crash();
  CHECK(read_text("/etc/hosts").find("#blade:" + a.uid() + " 10.7.7.7") != std::string::npos);
  CHECK(resolve("www.blade-dns.test") == "10.0.0.1");
  d.restart();  // returns once recovery has run
  auto c2 = d.client();
  CHECK(wait_destroyed(c2, a.uid()) == "destroyed");
  CHECK(read_text("/etc/hosts") == hosts);
  CHECK(resolve("www.blade-dns.test") == "10.7.7.7");
  CHECK(resolve("keep.test") == "10.7.7.7");
  CHECK(temp_files_in_etc() == 0);
}

TEST_CASE("destroy works from the host's restore record alone (the plugin's local copy lost)") {
  DnsWorld w(PrivateEtc::Kind::Overlay);
  BladedProcess d(network_options());
  auto c = d.client();
  const BothFaults f(c);
  d.crash();
  for (const auto &uid : {f.entry.uid(), f.down.uid()}) {
    REQUIRE(fs::exists(local_record_dir(d, uid) / "record.json"));
    fs::remove_all(local_record_dir(d, uid));
  }
  check_recovered(d, f);
}

#ifdef BLADE_FAILPOINTS

// A crash between the record and the write, and right after the write:
// the restart's recovery leaves the files as they were.
TEST_CASE("a crash inside create, before or after the file is written, leaves nothing") {
  struct Case {
    std::string action, point;
    json flags;
  };
  const json entry_flags = dns_flags("www.blade-dns.test", "10.0.0.1");
  const json down_flags = {{"allow_domain", "allowed.test"}};
  for (const Case &k : {Case{"dns", "network.dns.before_write", entry_flags},
                        Case{"dns", "network.dns.after_write", entry_flags},
                        Case{"dns_down", "network.dns_down.before_write", down_flags},
                        Case{"dns_down", "network.dns_down.after_write", down_flags}}) {
    CAPTURE(k.point);
    DnsWorld w(PrivateEtc::Kind::Overlay);
    BladedOptions o = network_options();
    o.env = {"BLADE_FAILPOINTS=" + k.point + "=kill"};
    BladedProcess d(o);
    {
      auto c = d.client();
      post_json(c, "/v1/experiments",
                {{"target", "network"}, {"action", k.action}, {"flags", k.flags}});
    }
    REQUIRE(d.process->exit_code(std::chrono::seconds(10)) == -SIGKILL);
    if (k.point.ends_with("after_write")) {
      const std::string file = k.action == "dns" ? "/etc/hosts" : "/etc/resolv.conf";
      CHECK(read_text(file).find("# blade:") != std::string::npos);  // the crash left the edit
    }
    d.set_env({});
    d.restart();
    auto c = d.client();
    const std::string status = wait_status(c, listed_uid(c), "destroyed").value("status", "");
    CHECK((status == "destroyed" || status == "failed"));
    CHECK(read_text("/etc/hosts") == kHosts);
    CHECK(read_text("/etc/resolv.conf") == kResolvConf);
    CHECK(temp_files_in_etc() == 0);
    CHECK(resolve("www.blade-dns.test") == "10.20.30.40");
  }
}

// No record at all: the create stalls before the plugin is called (the row
// stored, no record yet), the edits a host that stores records only at the
// end (ABI 1.1) could leave are planted, and the daemon dies. Destroy finds
// them by the uid in their markers alone.
TEST_CASE("with no record (a crash before the first), destroy finds the edits by their uid") {
  for (const std::string action : {"dns", "dns_down"}) {
    CAPTURE(action);
    DnsWorld w(PrivateEtc::Kind::Overlay);
    BladedOptions o = network_options();
    o.env = {"BLADE_FAILPOINTS=core.create.before_plugin=sleep:5000"};
    BladedProcess d(o);
    std::thread creating([&] {
      auto c = d.client();
      post_json(c, "/v1/experiments",
                {{"target", "network"},
                 {"action", action},
                 {"flags", action == "dns" ? dns_flags("www.blade-dns.test", "10.0.0.1")
                                           : json{{"allow_domain", "allowed.test"}}}});
    });
    auto c = d.client();
    const std::string uid = listed_uid(c);
    if (action == "dns") {
      write_file("/etc/hosts", kHosts + hosts_line("10.0.0.1", "www.blade-dns.test", uid) + "\n");
      REQUIRE(resolve("www.blade-dns.test") == "10.0.0.1");
    } else {
      write_file("/etc/resolv.conf", "# the test's own resolv.conf\n#blade:" + uid +
                                         " nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
                                         "nameserver 127.66.76.1 # blade:" +
                                         uid + "\n");
      REQUIRE(resolve("blocked.test") != "10.9.9.9");
    }
    d.crash();
    creating.join();
    d.set_env({});
    d.restart();
    auto c2 = d.client();
    const std::string status = wait_status(c2, uid, "destroyed").value("status", "");
    CHECK((status == "destroyed" || status == "failed"));
    CHECK(read_text("/etc/hosts") == kHosts);
    CHECK(read_text("/etc/resolv.conf") == kResolvConf);
    CHECK(resolve("www.blade-dns.test") == "10.20.30.40");
    CHECK(resolve("blocked.test") == "10.9.9.9");
  }
}

#endif  // BLADE_FAILPOINTS
