// The dns faults' pure parts: host name checks and matching, the marked
// edits of a resolver file (undone byte for byte, edits of others kept),
// the hosts lines network dns finds and hides (replace),
// and the DNS query parser the stub resolver runs on every datagram it
// gets, which no input may crash.
#include <random>
#include <string>

#include <doctest/doctest.h>

#include "../../plugins/network/src/dns_marked_file.hpp"
#include "../../plugins/network/src/dns_message.hpp"
#include "../../plugins/network/src/dns_names.hpp"
#include "../../plugins/network/src/hosts_lines.hpp"

using namespace blade::network;

TEST_CASE("host names: what is one, and what is under an allowed domain") {
  for (const char *ok : {"a", "www.example.com", "x-1.Example.COM", "1.2.3.4.in-addr.arpa"})
    CHECK_MESSAGE(hostname_problem(ok).empty(), ok);
  for (const char *bad : {"", "a b", "a#b", "a\nb", "-a.com", "a-.com", "a..b", ".a", "a.", "a_b",
                          "a/b", "\xc3\xa9.com"})
    CHECK_MESSAGE(!hostname_problem(bad).empty(), bad);
  CHECK(!hostname_problem(std::string(64, 'a')).empty());
  CHECK(hostname_problem(std::string(63, 'a')).empty());
  std::string long_name;
  while (long_name.size() < 254)
    long_name += "abcdefgh.";
  CHECK(!hostname_problem(long_name.substr(0, 254)).empty());

  const std::vector<std::string> allowed = {"example.com", "corp"};
  CHECK(name_is_allowed("example.com", allowed));
  CHECK(name_is_allowed("api.example.com", allowed));
  CHECK(name_is_allowed("a.b.corp", allowed));
  CHECK_FALSE(name_is_allowed("badexample.com", allowed));
  CHECK_FALSE(name_is_allowed("example.com.evil", allowed));
  CHECK_FALSE(name_is_allowed("com", allowed));
  CHECK_FALSE(name_is_allowed("", allowed));
  CHECK_FALSE(name_is_allowed("example.com", {}));
  CHECK(lower_name("WwW.ExAmple.COM") == "www.example.com");
}

TEST_CASE("marked edits: appended and hidden lines undone exactly, other edits kept") {
  const std::string uid = "0123456789abcdef";
  const std::string line = "10.0.0.1 a.test" + added_marker(uid);
  SUBCASE("a file ending with a newline") {
    const std::string text = "127.0.0.1 localhost\n";
    const std::string on = append_line(text, line);
    CHECK(on == text + line + "\n");
    CHECK(has_marks(on, uid));
    CHECK(remove_marks(on, uid) == text);
  }
  SUBCASE("a file without a final newline keeps that") {
    const std::string text = "127.0.0.1 localhost";
    const std::string on = append_line(text, line);
    CHECK(on == text + "\n" + line);
    CHECK(remove_marks(on, uid) == text);
    // A line added after ours (by someone else) stays, as it was written.
    CHECK(remove_marks(on + "\n10.9.9.9 b.test", uid) == text + "\n10.9.9.9 b.test");
  }
  SUBCASE("an empty file") {
    CHECK(append_line("", line) == line + "\n");
    CHECK(remove_marks(append_line("", line), uid) == "");
  }
  SUBCASE("only this uid's edits go; CRLF and trailing blanks tolerated") {
    const std::string other = "10.0.0.2 b.test" + added_marker("fedcba9876543210");
    const std::string text = "# head\r\n" + other + "\n" + line + " \r\nlast\n";
    CHECK(remove_marks(text, uid) == "# head\r\n" + other + "\nlast\n");
    CHECK_FALSE(has_marks("# blade:" + uid + "x\n", uid));
  }
  SUBCASE("hidden nameserver lines shown again") {
    const std::string text =
        "search corp\nnameserver 10.0.0.53\n nameserver 10.0.0.54\noptions ndots:2\n";
    const std::string hidden = hide_lines(text, "nameserver", uid);
    CHECK(hidden == "search corp\n" + hidden_prefix(uid) + "nameserver 10.0.0.53\n" +
                        hidden_prefix(uid) + " nameserver 10.0.0.54\noptions ndots:2\n");
    const std::string on = append_line(hidden, "nameserver 127.66.76.1" + added_marker(uid));
    // Someone adds a search line meanwhile: it stays.
    CHECK(remove_marks(on + "search other\n", uid) == text + "search other\n");
    CHECK(remove_marks(text, uid) == text);  // nothing of ours: nothing changes
  }
}

TEST_CASE("hosts lines: the first naming a domain, case aside, comments and words skipped") {
  const std::string text =
      "127.0.0.1 localhost\n# 10.0.0.9 a.test\n10.0.0.8 x.test # a.test\n"
      "#blade:0123456789abcdef 10.0.0.7 a.test\n  10.0.0.6\tfoo A.Test\n10.0.0.5 b.test";
  auto named = first_line_naming(text, {"b.test", "a.test"});
  REQUIRE(named.has_value());
  CHECK(named->line == "  10.0.0.6\tfoo A.Test");
  CHECK(named->name == "a.test");
  CHECK(first_line_naming(text, {"b.test"})->line == "10.0.0.5 b.test");
  // An address is not a name.
  CHECK_FALSE(first_line_naming(text, {"10.0.0.5", "c.test"}).has_value());
  CHECK_FALSE(first_line_naming("", {"a.test"}).has_value());
}

TEST_CASE("hosts lines: replace hides the lines naming ours, keeps the others' names, undone") {
  const std::string uid = "0123456789abcdef";
  const std::vector<std::string> ours = {"a.test", "b.test"};
  const std::string line = "10.0.0.1 a.test b.test" + added_marker(uid);
  SUBCASE("a line naming only ours is hidden; two lines, one with other hosts") {
    const std::string text = "127.0.0.1 localhost\n10.7.7.7 A.test\n"
                             "10.8.8.8 keep.test b.test alias # theirs\n::1 localhost\n";
    const HostsReplacement r = replace_names(text, ours, uid);
    CHECK(r.text == "127.0.0.1 localhost\n" + hidden_prefix(uid) + "10.7.7.7 A.test\n" +
                        hidden_prefix(uid) + "10.8.8.8 keep.test b.test alias # theirs\n" +
                        "10.8.8.8 keep.test alias" + added_marker(uid) + "\n::1 localhost\n");
    REQUIRE(r.replaced.size() == 2);
    CHECK(r.replaced[0].line == "10.7.7.7 A.test");
    CHECK(r.replaced[0].names == std::vector<std::string>{"a.test"});
    CHECK(r.replaced[0].kept.empty());
    CHECK(r.replaced[1].names == std::vector<std::string>{"b.test"});
    CHECK(r.replaced[1].kept == "10.8.8.8 keep.test alias");
    // Nothing names ours any more but the appended line.
    const std::string on = append_line(r.text, line);
    CHECK(first_line_naming(on, ours)->line == line);
    CHECK(first_line_naming(on, {"keep.test"})->line == "10.8.8.8 keep.test alias" +
                                                           added_marker(uid));
    CHECK(remove_marks(on, uid) == text);
    // A line someone adds meanwhile, before and after ours, stays.
    CHECK(remove_marks("# top\n" + on + "10.9.9.9 c.test\n", uid) ==
          "# top\n" + text + "10.9.9.9 c.test\n");
  }
  SUBCASE("the last line, without a newline, naming ours and another host") {
    const std::string text = "127.0.0.1 localhost\n10.8.8.8 a.test other.test";
    const HostsReplacement r = replace_names(text, ours, uid);
    CHECK(r.text == "127.0.0.1 localhost\n" + hidden_prefix(uid) +
                        "10.8.8.8 a.test other.test\n10.8.8.8 other.test" + added_marker(uid));
    const std::string on = append_line(r.text, line);
    CHECK(remove_marks(on, uid) == text);
    CHECK(remove_marks(on + "\n10.9.9.9 c.test", uid) == text + "\n10.9.9.9 c.test");
  }
  SUBCASE("a line naming one of ours twice, CRLF: reported once, restored exactly") {
    const std::string text = "10.7.7.7 a.test A.TEST\r\nlast\r\n";
    const HostsReplacement r = replace_names(text, ours, uid);
    REQUIRE(r.replaced.size() == 1);
    CHECK(r.replaced[0].names == std::vector<std::string>{"a.test"});
    CHECK(r.replaced[0].kept.empty());
    CHECK(remove_marks(append_line(r.text, line), uid) == text);
  }
  SUBCASE("nothing named: nothing changes") {
    const std::string text = "127.0.0.1 localhost\n# a.test\n";
    const HostsReplacement r = replace_names(text, ours, uid);
    CHECK(r.text == text);
    CHECK(r.replaced.empty());
  }
}

namespace {

// A query for `name` (type A, class IN) with id 0x1234 and RD set.
std::string query_for(const std::string &name) {
  std::string q = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  std::size_t start = 0;
  while (start <= name.size() && !name.empty()) {
    const std::size_t dot = std::min(name.find('.', start), name.size());
    q += static_cast<char>(dot - start);
    q += name.substr(start, dot - start);
    start = dot + 1;
  }
  q += '\0';
  q += std::string{0, 1, 0, 1};
  return q;
}

}  // namespace

TEST_CASE("dns queries: the name read, the answer refusing it, malformed input refused") {
  const std::string q = query_for("Api.Example.COM");
  const auto parsed = parse_query(q);
  REQUIRE(parsed);
  CHECK(parsed->name == "api.example.com");
  CHECK(parsed->question_end == q.size());
  const std::string a = answer_with_rcode(q, parsed->question_end, kServFail);
  CHECK(a.size() == q.size());
  CHECK(message_id(a) == 0x1234);
  CHECK((static_cast<unsigned char>(a[2]) & 0x80) != 0);  // QR
  CHECK((static_cast<unsigned char>(a[2]) & 0x01) != 0);  // RD kept
  CHECK((static_cast<unsigned char>(a[3]) & 0x0f) == kServFail);
  CHECK(a[5] == 1);  // the question, echoed
  CHECK(a.substr(12) == q.substr(12));

  CHECK_FALSE(parse_query(""));
  CHECK_FALSE(parse_query(q.substr(0, 11)));
  CHECK_FALSE(parse_query(q.substr(0, q.size() - 1)));  // QCLASS cut short
  std::string response = q;
  response[2] = static_cast<char>(0x81);
  CHECK_FALSE(parse_query(response));
  std::string no_question = q;
  no_question[5] = 0;
  CHECK_FALSE(parse_query(no_question));
  std::string pointer = q.substr(0, 12) + "\xc0\x0c" + std::string{0, 1, 0, 1};
  CHECK_FALSE(parse_query(pointer));
  std::string overlong = q.substr(0, 12) + "\x3f" + std::string(10, 'a');
  CHECK_FALSE(parse_query(overlong));
  CHECK(answer_with_rcode("ab", 0, 1).size() == 12);  // a header even for a stub of one

  // Random datagrams: never a crash, and whatever parses has its question
  // inside the message (a read past the end shows under a sanitizer).
  std::mt19937 rng(14);
  for (int i = 0; i < 20000; ++i) {
    std::string m(rng() % 64, '\0');
    for (auto &c : m)
      c = static_cast<char>(rng() % 4 == 0 ? rng() % 8 : rng());
    if (m.size() > 5) m[2] &= 0x7f;
    if (auto p = parse_query(m)) {
      CHECK(p->question_end <= m.size());
      CHECK(answer_with_rcode(m, p->question_end, kServFail).size() == p->question_end);
    }
  }
}
