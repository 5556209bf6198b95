// The request line of helper_protocol.hpp and its line splitter.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "../../../plugins/cri/src/helper_protocol.hpp"

using namespace blade::cri;

namespace {

HelperRequest sample() {
  HelperRequest r;
  r.op = "destroy";
  r.uid = "0123456789abcdef";
  r.target = "file";
  r.action = "delete";
  r.flags = {{"filepath", "/tmp/a b\n\"c\""}, {"force", "true"}};
  r.restore_json = R"({"path":"/tmp/x"})";
  r.enter = {4242, 987654321012ULL, true, true, false, true, false, true};
  r.state_dir = "/var/lib/blade/cri/containers/abc";
  r.daemon_pid = 77;
  r.config_json = R"({"cpu_meter":"cgroup"})";
  r.deadline_ms = 1500;
  return r;
}

}  // namespace

TEST_CASE("a request survives the line both ways") {
  const HelperRequest a = sample();
  const std::string line = to_json(a);
  CHECK(line.find('\n') == std::string::npos);  // one line, whatever the flags hold
  const HelperRequest b = request_from_json(line);
  CHECK(b.op == a.op);
  CHECK(b.uid == a.uid);
  CHECK(b.target == a.target);
  CHECK(b.action == a.action);
  CHECK(b.flags == a.flags);
  CHECK(b.restore_json == a.restore_json);
  CHECK(b.enter.pid == 4242);
  CHECK(b.enter.start == 987654321012ULL);
  CHECK(b.enter.mnt);
  CHECK(b.enter.pid_ns);
  CHECK_FALSE(b.enter.net);
  CHECK(b.enter.ipc);
  CHECK_FALSE(b.enter.uts);
  CHECK(b.enter.cgroup);
  CHECK(b.state_dir == a.state_dir);
  CHECK(b.daemon_pid == 77);
  CHECK(b.config_json == a.config_json);
  CHECK(b.deadline_ms == 1500);
}

TEST_CASE("a bad request names what is wrong") {
  auto error_of = [](const std::string &line) {
    try {
      request_from_json(line);
    } catch (const std::invalid_argument &e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK(error_of("not json") == "helper request: not a JSON object");
  CHECK(error_of("{}") == "helper request: op is missing");
  std::string line = to_json(sample());
  auto without = [&](const std::string &from, const std::string &to) {
    std::string l = line;
    l.replace(l.find(from), from.size(), to);
    return l;
  };
  CHECK(error_of(without("\"op\":\"destroy\"", "\"op\":\"explode\"")).find("op 'explode'") !=
        std::string::npos);
  CHECK(error_of(without("\"pid\":4242", "\"pid\":0")) ==
        "helper request: enter.pid must be positive");
  CHECK(error_of(without("\"pid\":4242", "\"pid\":\"4242\"")) ==
        "helper request: enter.pid has the wrong type");
  CHECK(error_of(without("\"cgroup\":true", "\"cgroup\":1")) ==
        "helper request: enter.cgroup has the wrong type");
  CHECK(error_of(without("\"pid_ns\":true", "\"pid_ns\":false")) ==
        "helper request: enter.mnt needs enter.pid_ns");
  CHECK(error_of(without("\"state_dir\":\"/var", "\"state_dir\":\"var")) ==
        "helper request: state_dir must be an absolute path");
  CHECK(error_of(without("[\"force\",\"true\"]", "[\"force\"]")) ==
        "helper request: flags must be [name, value] string pairs");
}

TEST_CASE("lines are split at newlines and bounded") {
  LineBuffer b(8);
  b.append("ab\ncd", 5);
  CHECK(b.next() == std::optional<std::string>("ab"));
  CHECK_FALSE(b.next().has_value());
  b.append("e\n\n", 3);
  CHECK(b.next() == std::optional<std::string>("cde"));
  CHECK(b.next() == std::optional<std::string>(""));
  b.append("123456789", 9);
  CHECK_THROWS_AS(b.next(), std::length_error);
}
