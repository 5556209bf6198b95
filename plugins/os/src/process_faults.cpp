// process kill / process stop: signals to the processes that match by name,
// command line, pid or listening port. Stop is undone by SIGCONT to exactly
// the processes it stopped, each recognised by pid AND start time, so a pid
// the kernel handed to a new process meanwhile is never signalled.
#include <csignal>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fault.hpp"
#include "proc_table.hpp"

namespace blade::os {
namespace {

using nlohmann::json;

constexpr std::size_t kCommMax = 15;  // TASK_COMM_LEN - 1: the kernel truncates comm

std::vector<std::string> split_names(const std::string &text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string name = text.substr(start, comma - start);
    auto first = name.find_first_not_of(" \t");
    auto last = name.find_last_not_of(" \t");
    if (first != std::string::npos) out.push_back(name.substr(first, last - first + 1));
    start = comma + 1;
  }
  return out;
}

std::string basename_of_argv0(const std::string &cmdline) {
  std::string argv0 = cmdline.substr(0, cmdline.find(' '));
  auto slash = argv0.rfind('/');
  return slash == std::string::npos ? argv0 : argv0.substr(slash + 1);
}

// A process "is named" `name` as ps/pgrep would say: its comm (which the
// kernel cuts at 15 characters) or the file name of its argv[0].
bool has_name(const proc::Process &p, const std::string &name) {
  if (p.stat.comm == name) return true;
  if (name.size() > kCommMax && p.stat.comm == name.substr(0, kCommMax)) return true;
  return !p.cmdline.empty() && basename_of_argv0(p.cmdline) == name;
}

// What the request asks for, checked before anything is signalled.
struct Selector {
  std::optional<std::string> name;
  std::optional<std::string> cmd;
  std::optional<pid_t> pid;
  std::optional<int> port;
  std::int64_t count = 0;
  std::vector<std::string> excluded;
  bool ignore_not_found = false;

  std::string describe() const {
    std::vector<std::string> parts;
    if (name) parts.push_back("process " + *name);
    if (cmd) parts.push_back("process-cmd " + *cmd);
    if (pid) parts.push_back("pid " + std::to_string(*pid));
    if (port) parts.push_back("local-port " + std::to_string(*port));
    std::string out;
    for (const auto &p : parts)
      out += (out.empty() ? "" : ", ") + p;
    return out;
  }
};

std::optional<std::string> non_empty(const Request &req, std::string_view flag) {
  auto v = req.flag(flag);
  if (!v) return std::nullopt;
  if (v->empty()) throw sdk::InvalidArgument(std::string(flag) + ": must not be empty");
  return std::string(*v);
}

Selector parse_selector(const Request &req) {
  Selector s;
  s.name = non_empty(req, "process");
  s.cmd = non_empty(req, "process-cmd");
  if (req.flag("pid")) s.pid = static_cast<pid_t>(req.flag_int("pid", 0));
  if (req.flag("local-port")) {
    auto port = req.flag_int("local-port", 0);
    if (port < 1 || port > 65535) throw sdk::InvalidArgument("local-port: must be 1-65535");
    s.port = static_cast<int>(port);
  }
  if (!s.name && !s.cmd && !s.pid && !s.port)
    throw sdk::InvalidArgument("process: one of process, process-cmd, pid, local-port is required");
  s.count = req.flag_int("count", 0);
  if (s.count < 0) throw sdk::InvalidArgument("count: must be 0 (all) or more");
  s.excluded = split_names(req.flag_or("exclude-process", ""));
  s.ignore_not_found = req.flag_bool("ignore-not-found");
  return s;
}

class ProcessSelection {
 public:
  explicit ProcessSelection(const Host &host) : host_(host) {}

  // The processes to hit, ascending pid, at most `count`. Throws
  // InvalidArgument for an explicit pid that must never be hit.
  std::vector<proc::Process> select(const Selector &s) const {
    const pid_t daemon = host_.daemon_pid() > 0 ? host_.daemon_pid() : ::getpid();
    const std::vector<pid_t> chain = proc::self_and_ancestors(daemon);
    const std::set<pid_t> protected_pids(chain.begin(), chain.end());

    std::vector<pid_t> candidates;
    std::optional<proc::Process> explicit_process;
    if (s.pid) {
      const pid_t group = proc::thread_group_of(*s.pid).value_or(*s.pid);
      const pid_t parent = chain.size() > 1 ? chain[1] : 0;
      explicit_process = check_explicit_pid(*s.pid, group, daemon, parent, protected_pids);
      candidates.push_back(group);
    } else if (s.port) {
      candidates = proc::socket_owners(proc::listening_inodes(*s.port));
    } else {
      candidates = proc::list_pids();
    }

    std::vector<proc::Process> out;
    for (pid_t pid : candidates) {
      if (protected_pids.count(pid)) continue;
      auto p = s.pid ? std::move(explicit_process) : proc::read_process(pid);
      if (!p || p->dead() || p->kernel_thread()) continue;
      // The daemon's own helpers (a forked memory holder shares its command
      // line) belong to other faults; only an explicit pid reaches them.
      if (!s.pid && p->stat.ppid == daemon) continue;
      if (!matches(*p, s)) continue;
      out.push_back(std::move(*p));
      if (s.count > 0 && static_cast<std::int64_t>(out.size()) >= s.count) break;
    }
    return out;
  }

 private:
  // Refuses a pid that must never be hit; the process it names (read once,
  // for the selection too), or nullopt when it is gone.
  static std::optional<proc::Process> check_explicit_pid(pid_t pid, pid_t group, pid_t daemon,
                                                         pid_t parent,
                                                         const std::set<pid_t> &protected_pids) {
    const std::string what = "pid: " + std::to_string(pid);
    if (group == daemon) throw sdk::InvalidArgument(what + " is bladed itself");
    if (group == 1) throw sdk::InvalidArgument(what + " is init (pid 1)");
    if (group == parent) throw sdk::InvalidArgument(what + " is the parent of bladed");
    if (protected_pids.count(group)) throw sdk::InvalidArgument(what + " is an ancestor of bladed");
    auto p = proc::read_process(group);
    if (p && p->kernel_thread()) throw sdk::InvalidArgument(what + " is a kernel thread");
    return p;
  }

  static bool matches(const proc::Process &p, const Selector &s) {
    for (const auto &ex : s.excluded)
      if (has_name(p, ex)) return false;
    if (s.name && !has_name(p, *s.name)) return false;
    if (s.cmd && p.cmdline.find(*s.cmd) == std::string::npos) return false;
    return true;  // pid and port chose the candidates already
  }

  Host host_;
};

json describe(const proc::Process &p) {
  return {{"pid", p.pid},
          {"name", p.stat.comm},
          {"cmdline", p.cmdline},
          {"start_time", p.stat.start_time}};
}

std::string not_found_message(const Selector &s) {
  return "process: no process matches " + s.describe();
}

// Shared by kill and stop: selection, dry run, the not-found rule.
class SignalFault : public Fault {
 public:
  SignalFault(const Host &host, std::string action) : host_(host), action_(std::move(action)) {}

  std::string plan(const Request &req, Call &) override {
    Selector s = parse_selector(req);
    auto hit = ProcessSelection(host_).select(s);
    json processes = json::array();
    for (const auto &p : hit)
      processes.push_back(describe(p));
    json plan = {{"action", action_}, {"signal", signal_of(req)}, {"processes", processes}};
    if (hit.empty() && !s.ignore_not_found) plan["would_fail"] = not_found_message(s);
    return plan.dump();
  }

 protected:
  virtual int signal_of(const Request &req) const = 0;

  // The processes to hit; empty only with ignore-not-found.
  std::vector<proc::Process> targets(const Selector &s) const {
    auto hit = ProcessSelection(host_).select(s);
    if (hit.empty() && !s.ignore_not_found) throw sdk::FailedPrecondition(not_found_message(s));
    return hit;
  }

  static std::string signal_error(const proc::Process &p, int err) {
    return "pid " + std::to_string(p.pid) + " (" + p.stat.comm + "): " + std::strerror(err);
  }

  static sdk::Error error_for(int err, const std::string &message) {
    if (err == EPERM) return sdk::PermissionDenied(message);
    return sdk::FailedPrecondition(message);
  }

  Host host_;
  std::string action_;
};

// Not a lasting fault: the signal is sent and the record says to whom.
class KillFault : public SignalFault {
 public:
  explicit KillFault(const Host &host) : SignalFault(host, "kill") {}

  Outcome create(const Request &req, Call &call) override {
    Selector s = parse_selector(req);
    const int sig = signal_of(req);
    auto hit = targets(s);
    json signalled = json::array();
    json failed = json::array();
    std::string last_error;
    int last_errno = 0;
    for (const auto &p : hit) {
      call.check();
      int err = proc::signal_if_same(p.pid, p.stat.start_time, sig);
      if (err == 0) {
        signalled.push_back(describe(p));
      } else if (err != ESRCH) {  // gone meanwhile: nothing to do for it
        last_error = signal_error(p, err);
        last_errno = err;
        failed.push_back({{"pid", p.pid}, {"error", std::strerror(err)}});
      }
    }
    if (signalled.empty() && !failed.empty())
      throw error_for(last_errno,
                      "process: cannot send signal " + std::to_string(sig) + " to " + last_error);
    host_.info("process kill: signal " + std::to_string(sig) + " sent to " +
               std::to_string(signalled.size()) + " process(es)");
    json result = {{"signal", sig}, {"processes", signalled}, {"failed", failed}};
    json restore = {{"signal", sig}, {"signalled", signalled}};
    return {result.dump(), restore.dump()};
  }

  // A signal cannot be taken back; the record is only history.
  void destroy(const Request &, Call &) override {}

 protected:
  int signal_of(const Request &req) const override {
    return static_cast<int>(req.flag_int("signal", SIGKILL));
  }
};

class StopFault : public SignalFault {
 public:
  explicit StopFault(const Host &host) : SignalFault(host, "stop") {}

  Outcome create(const Request &req, Call &call) override {
    Selector s = parse_selector(req);
    auto hit = targets(s);
    json stopped = json::array();
    json already = json::array();
    for (const auto &p : hit) {
      // A process stopped before us is not ours to continue on destroy.
      if (p.stat.state == 'T') {
        already.push_back(describe(p));
        continue;
      }
      int err = proc::signal_if_same(p.pid, p.stat.start_time, SIGSTOP);
      if (err == ESRCH) continue;
      if (err != 0 || call.cancelled()) {
        continue_all(stopped);  // all or nothing: leave no process stopped
        if (err == 0) throw sdk::Cancelled("cancelled by the host");
        throw error_for(err, "process: cannot stop " + signal_error(p, err));
      }
      stopped.push_back(describe(p));
    }
    if (stopped.empty() && already.empty() && !hit.empty() && !s.ignore_not_found)
      throw sdk::FailedPrecondition(not_found_message(s) + " (all exited meanwhile)");
    host_.info("process stop: stopped " + std::to_string(stopped.size()) + " process(es)");
    json restore = json::array();
    for (const auto &p : stopped)
      restore.push_back({{"pid", p["pid"]}, {"start_time", p["start_time"]}});
    json result = {{"processes", stopped}, {"already_stopped", already}};
    return {result.dump(), json{{"stopped", restore}}.dump()};
  }

  // SIGCONT to each recorded process that is still the same one; gone or
  // replaced ones are skipped, so this is idempotent and needs no memory.
  void destroy(const Request &req, Call &) override {
    auto record = json::parse(req.restore_json().value_or("{}"), nullptr, false);
    if (!record.is_object()) return;
    auto list = record.value("stopped", json::array());
    std::string errors;
    for (const auto &entry : list) {
      if (!entry.contains("pid") || !entry.contains("start_time")) continue;
      pid_t pid = entry["pid"].get<pid_t>();
      auto start = entry["start_time"].get<std::uint64_t>();
      int err = proc::signal_if_same(pid, start, SIGCONT);
      if (err == ESRCH) {
        host_.info("process stop: pid " + std::to_string(pid) + " is gone; nothing to continue");
      } else if (err != 0) {
        errors += (errors.empty() ? "" : "; ") + ("pid " + std::to_string(pid) + ": ") +
                  std::strerror(err);
      }
    }
    if (!errors.empty()) throw sdk::FailedPrecondition("process: cannot continue " + errors);
  }

 protected:
  int signal_of(const Request &) const override { return SIGSTOP; }

 private:
  static void continue_all(const json &stopped) {
    for (const auto &p : stopped)
      proc::signal_if_same(p["pid"].get<pid_t>(), p["start_time"].get<std::uint64_t>(), SIGCONT);
  }
};

}  // namespace

void register_process_faults(FaultTable &table, const Host &host) {
  table[{"process", "kill"}] = std::make_unique<KillFault>(host);
  table[{"process", "stop"}] = std::make_unique<StopFault>(host);
}

}  // namespace blade::os
