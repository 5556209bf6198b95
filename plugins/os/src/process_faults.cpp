// process kill / process stop: signals to the processes that match by name,
// command line, pid or listening port. Stop is undone by SIGCONT to exactly
// the processes it stopped, each recognised by pid AND start time, so a pid
// the kernel handed to a new process meanwhile is never signalled. Before
// the first SIGSTOP the list of processes about to be stopped is saved
// ahead and each pid claimed (experiment_state.hpp), so a crash mid-way
// leaves no process stopped for good, and two stops never share a process.
// A kill cannot be undone: it has nothing to record.
//
// Never a target: bladed, its ancestors and descendants (its own helpers),
// pid 1, kernel threads, and any process whose command line holds "blade"
// (the blade CLI that sent the request carries the pattern in its own
// arguments, and so would a sudo or shell wrapping it).
#include <csignal>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <blade/failpoint.hpp>
#include <nlohmann/json.hpp>

#include "experiment_state.hpp"
#include "fault.hpp"
#include "pid_guard.hpp"
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

// Parents read once per selection: the descendant test walks up from each
// candidate, and many share ancestors.
class Parents {
 public:
  // True when `pid` descends from `ancestor` (not counting itself).
  bool descends_from(pid_t pid, pid_t ancestor) {
    for (int depth = 0; pid > 1 && depth < 4096; ++depth) {
      pid = parent_of(pid);
      if (pid == ancestor) return true;
    }
    return false;
  }

 private:
  pid_t parent_of(pid_t pid) {
    if (auto it = cache_.find(pid); it != cache_.end()) return it->second;
    auto p = proc::read_process(pid);
    const pid_t parent = p ? p->stat.ppid : 0;
    cache_[pid] = parent;
    return parent;
  }
  std::map<pid_t, pid_t> cache_;
};

class ProcessSelection {
 public:
  explicit ProcessSelection(const Host &host) : host_(host) {}

  // The processes to hit, ascending pid, at most `count`. Throws
  // InvalidArgument for an explicit pid that must never be hit.
  std::vector<proc::Process> select(const Selector &s) const {
    const pid_t daemon = host_.daemon_pid() > 0 ? host_.daemon_pid() : ::getpid();
    const std::vector<pid_t> chain = proc::self_and_ancestors(daemon);
    const std::set<pid_t> protected_pids(chain.begin(), chain.end());

    Parents parents;
    std::vector<pid_t> candidates;
    std::optional<proc::Process> explicit_process;
    if (s.pid) {
      const pid_t group = proc::thread_group_of(*s.pid).value_or(*s.pid);
      const pid_t parent = chain.size() > 1 ? chain[1] : 0;
      explicit_process = check_explicit_pid(*s.pid, group, daemon, parent, protected_pids);
      if (parents.descends_from(group, daemon))
        throw sdk::InvalidArgument("pid: " + std::to_string(*s.pid) +
                                   " is a child of bladed (one of its own helpers)");
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
      if (!s.pid) {
        // The daemon's own helpers (a forked memory holder shares its
        // command line) belong to other faults; a blade CLI carries the
        // pattern in its own arguments.
        if (is_blade(*p) || parents.descends_from(pid, daemon)) continue;
      }
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
    return refuse_protected_pid("pid", pid, group, daemon, parent, protected_pids);
  }

  static bool is_blade(const proc::Process &p) { return is_blade_process(p); }

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

// Not a lasting fault: a signal cannot be taken back, so nothing is saved
// ahead (a crash mid-way leaves nothing destroy could undo) and the final
// record only says to whom it was sent.
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
      BLADE_FAILPOINT("os.process.kill.before_signal");
      int err = proc::signal_if_same(p.pid, p.stat.start_time, sig);
      BLADE_FAILPOINT("os.process.kill.after_signal");
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
  explicit StopFault(const Host &host) : SignalFault(host, "stop"), state_(host) {}

  Outcome create(const Request &req, Call &call) override {
    Selector s = parse_selector(req);
    auto hit = targets(s);
    const std::string uid(req.uid());
    for (const auto &p : hit)
      state_.refuse_if_pid_held(p.pid, p.stat.start_time, uid);
    json to_stop = json::array();
    json already = json::array();
    std::vector<const proc::Process *> stopping;
    for (const auto &p : hit) {
      // A process stopped before us is not ours to continue on destroy.
      if (p.stat.state == 'T') {
        already.push_back(describe(p));
      } else {
        to_stop.push_back({{"pid", p.pid}, {"start_time", p.stat.start_time}});
        stopping.push_back(&p);
      }
    }
    // Every process about to be stopped, saved before the first SIGSTOP: a
    // destroy continues each that is still the same process (a SIGCONT to
    // one a crash kept us from stopping is harmless: it runs already).
    json rec = {{"fault", "process stop"}, {"stopped", to_stop}};
    json stopped = json::array();
    if (!stopping.empty()) {
      state_.checkpoint(call, uid, rec);
      try {
        for (const auto *p : stopping)
          state_.claim_pid(p->pid, p->stat.start_time, uid);
        for (const auto *p : stopping) {
          call.check();
          BLADE_FAILPOINT("os.process.stop.before_signal");
          int err = proc::signal_if_same(p->pid, p->stat.start_time, SIGSTOP);
          BLADE_FAILPOINT("os.process.stop.after_signal");
          if (err == ESRCH) continue;
          if (err != 0) throw error_for(err, "process: cannot stop " + signal_error(*p, err));
          stopped.push_back(describe(*p));
        }
      } catch (...) {
        // All or nothing: leave no process stopped.
        try {
          undo(rec, uid);
          state_.finish(uid);
        } catch (const std::exception &e) {
          host_.warn("experiment " + uid + ": undoing a failed stop: " + e.what());
        }
        throw;
      }
    }
    if (stopped.empty() && already.empty() && !hit.empty() && !s.ignore_not_found)
      throw sdk::FailedPrecondition(not_found_message(s) + " (all exited meanwhile)");
    host_.info("process stop: stopped " + std::to_string(stopped.size()) + " process(es)");
    json result = {{"processes", stopped}, {"already_stopped", already}};
    return {result.dump(), rec.dump()};
  }

  // A dry run refuses what create would: a process another stop holds.
  std::string plan(const Request &req, Call &call) override {
    for (const auto &p : ProcessSelection(host_).select(parse_selector(req)))
      state_.refuse_if_pid_held(p.pid, p.stat.start_time, req.uid());
    return SignalFault::plan(req, call);
  }

  // SIGCONT to each recorded process that is still the same one; gone or
  // replaced ones are skipped, so this is idempotent and needs no memory.
  void destroy(const Request &req, Call &) override {
    undo(state_.record(req), req.uid());
    state_.finish(req.uid());
  }

 protected:
  int signal_of(const Request &) const override { return SIGSTOP; }

 private:
  void undo(const json &record, std::string_view uid) {
    if (!record.is_object()) return;
    auto list = record.value("stopped", json::array());
    std::string errors;
    for (const auto &entry : list) {
      if (!entry.contains("pid") || !entry.contains("start_time")) continue;
      pid_t pid = entry["pid"].get<pid_t>();
      auto start = entry["start_time"].get<std::uint64_t>();
      // Held by another stop: ours never got to stop it.
      if (state_.pid_held_by_other(pid, start, uid)) continue;
      BLADE_FAILPOINT("os.process.stop.destroy.before_signal");
      int err = proc::signal_if_same(pid, start, SIGCONT);
      BLADE_FAILPOINT("os.process.stop.destroy.after_signal");
      if (err == ESRCH) {
        host_.info("process stop: pid " + std::to_string(pid) + " is gone; nothing to continue");
      } else if (err != 0) {
        errors += (errors.empty() ? "" : "; ") + ("pid " + std::to_string(pid) + ": ") +
                  std::strerror(err);
      }
    }
    if (!errors.empty()) throw sdk::FailedPrecondition("process: cannot continue " + errors);
  }

  ExperimentState state_;
};

}  // namespace

void register_process_faults(FaultTable &table, const Host &host) {
  table[{"process", "kill"}] = std::make_unique<KillFault>(host);
  table[{"process", "stop"}] = std::make_unique<StopFault>(host);
}

}  // namespace blade::os
