// The request line of helper_protocol.hpp, both ways, and the line splitter
// both sides read with.
#include "../helper_protocol.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace blade::cri {

using nlohmann::json;

std::string to_json(const HelperRequest &r) {
  json flags = json::array();
  for (const auto &[name, value] : r.flags)
    flags.push_back(json::array({name, value}));
  const EnterPlan &e = r.enter;
  json j = {
      {"op", r.op},
      {"uid", r.uid},
      {"target", r.target},
      {"action", r.action},
      {"flags", std::move(flags)},
      {"restore", r.restore_json ? json(*r.restore_json) : json(nullptr)},
      {"enter",
       {{"pid", e.pid},
        {"start", e.start},
        {"mnt", e.mnt},
        {"pid_ns", e.pid_ns},
        {"net", e.net},
        {"ipc", e.ipc},
        {"uts", e.uts},
        {"cgroup", e.cgroup}}},
      {"state_dir", r.state_dir},
      {"daemon_pid", r.daemon_pid},
      {"config", r.config_json},
      {"deadline_ms", r.deadline_ms},
  };
  // Invalid UTF-8 in a flag is replaced, not thrown on: the inner fault then
  // refuses the value it cannot use, naming its flag.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

const json &field(const json &j, const char *name, json::value_t type, const char *where) {
  auto it = j.find(name);
  if (it == j.end())
    throw std::invalid_argument(std::string("helper request: ") + where + name + " is missing");
  const bool ok = it->type() == type ||
                  (type == json::value_t::number_integer && it->is_number_unsigned());
  if (!ok)
    throw std::invalid_argument(std::string("helper request: ") + where + name +
                                " has the wrong type");
  return *it;
}

std::string text(const json &j, const char *name, const char *where = "") {
  return field(j, name, json::value_t::string, where).get<std::string>();
}

bool flag(const json &j, const char *name) {
  return field(j, name, json::value_t::boolean, "enter.").get<bool>();
}

}  // namespace

HelperRequest request_from_json(const std::string &line) {
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw std::invalid_argument("helper request: not a JSON object");
  HelperRequest r;
  r.op = text(j, "op");
  if (r.op != "create" && r.op != "destroy" && r.op != "dry_run")
    throw std::invalid_argument("helper request: op '" + r.op +
                                "' is none of create, destroy, dry_run");
  r.uid = text(j, "uid");
  if (r.uid.empty()) throw std::invalid_argument("helper request: uid is empty");
  r.target = text(j, "target");
  r.action = text(j, "action");
  if (r.target.empty() || r.action.empty())
    throw std::invalid_argument("helper request: target and action must be named");
  for (const json &f : field(j, "flags", json::value_t::array, "")) {
    if (!f.is_array() || f.size() != 2 || !f[0].is_string() || !f[1].is_string())
      throw std::invalid_argument("helper request: flags must be [name, value] string pairs");
    r.flags.emplace_back(f[0].get<std::string>(), f[1].get<std::string>());
  }
  if (auto it = j.find("restore"); it != j.end() && !it->is_null()) {
    if (!it->is_string())
      throw std::invalid_argument("helper request: restore must be a string or null");
    r.restore_json = it->get<std::string>();
  }
  const json &e = field(j, "enter", json::value_t::object, "");
  r.enter.pid = field(e, "pid", json::value_t::number_integer, "enter.").get<int>();
  if (r.enter.pid <= 0) throw std::invalid_argument("helper request: enter.pid must be positive");
  r.enter.start = field(e, "start", json::value_t::number_integer, "enter.").get<std::uint64_t>();
  r.enter.mnt = flag(e, "mnt");
  r.enter.pid_ns = flag(e, "pid_ns");
  r.enter.net = flag(e, "net");
  r.enter.ipc = flag(e, "ipc");
  r.enter.uts = flag(e, "uts");
  r.enter.cgroup = flag(e, "cgroup");
  // The container's /proc shows only its own pid namespace: a helper in its
  // mount namespace but outside its pid namespace would find no
  // /proc/self there, and with it no state dir (/proc/self/fd/4).
  if (r.enter.mnt && !r.enter.pid_ns)
    throw std::invalid_argument("helper request: enter.mnt needs enter.pid_ns");
  r.state_dir = text(j, "state_dir");
  if (r.state_dir.empty() || r.state_dir.front() != '/')
    throw std::invalid_argument("helper request: state_dir must be an absolute path");
  r.daemon_pid = field(j, "daemon_pid", json::value_t::number_integer, "").get<int>();
  r.config_json = text(j, "config");
  if (!json::accept(r.config_json))
    throw std::invalid_argument("helper request: config is not JSON");
  r.deadline_ms = field(j, "deadline_ms", json::value_t::number_integer, "").get<std::int64_t>();
  if (r.deadline_ms < 0) throw std::invalid_argument("helper request: deadline_ms is negative");
  return r;
}

std::optional<std::string> LineBuffer::next() {
  const auto nl = buf_.find('\n');
  if (nl == std::string::npos) {
    if (buf_.size() > max_)
      throw std::length_error("a line of more than " + std::to_string(max_) + " bytes");
    return std::nullopt;
  }
  if (nl > max_) throw std::length_error("a line of more than " + std::to_string(max_) + " bytes");
  std::string line = buf_.substr(0, nl);
  buf_.erase(0, nl + 1);
  return line;
}

bool send_all(int fd, const std::string &text) {
  std::size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::send(fd, text.data() + off, text.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

bool read_some(int fd, LineBuffer &buf) {
  char chunk[65536];
  for (;;) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
}

}  // namespace blade::cri
