// process kill / process stop: signals to the processes one matcher picks,
// as ChaosBlade does: the first given of `process` (a text the full command
// line contains), `process-cmd` (the exact process name, comm), `local-port`
// (listening ports, a list with ranges) and `pid` (a list); the others are
// ignored, and the result says which was used. Stop is undone by SIGCONT to
// exactly the processes it stopped, each recognised by pid AND start time, so
// a pid the kernel handed to a new process meanwhile is never signalled.
// Before the first SIGSTOP the list of processes about to be stopped is saved
// ahead and each pid claimed (experiment_state.hpp), so a crash mid-way
// leaves no process stopped for good, and two stops never share a process.
// A kill cannot be undone: it has nothing to record.
//
// Never a target: bladed, its ancestors and descendants (its own helpers),
// pid 1, kernel threads, and any process whose command line holds "blade"
// (the blade CLI that sent the request carries the pattern in its own
// arguments, and so would a sudo or shell wrapping it; so do the processes
// of a process load).
#include <algorithm>
#include <array>
#include <csignal>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <blade/failpoint.hpp>
#include <nlohmann/json.hpp>

#include "../../common/int_list.hpp"
#include "../../common/pid_guard.hpp"
#include "experiment_state.hpp"
#include "fault.hpp"
#include "proc_table.hpp"
#include "process_load.hpp"
#include "signal_name.hpp"

namespace blade::os {
namespace {

using nlohmann::json;

constexpr std::size_t kCommMax = 15;            // TASK_COMM_LEN - 1: the kernel truncates comm

// `process-cmd` is the exact name as pgrep -x sees it: the comm, which the
// kernel cuts at 15 characters (so a longer name matches its first 15).
bool comm_is(const proc::Process &p, const std::string &name) {
  if (p.stat.comm == name) return true;
  return name.size() > kCommMax && p.stat.comm == name.substr(0, kCommMax);
}

// What exclude-process and `process` search: the full command line, or the
// comm for a process that has none left (a zombie).
const std::string &searched_text(const proc::Process &p) {
  return p.cmdline.empty() ? p.stat.comm : p.cmdline;
}

// ChaosBlade's matchers in the order it tries them: the first given wins.
constexpr std::array<std::string_view, 4> kMatchers = {"process", "process-cmd", "local-port",
                                                       "pid"};

// What the request asks for, checked before anything is signalled.
struct Selector {
  std::string matcher;  // one of kMatchers
  std::string value;
  std::vector<std::string> ignored;  // matchers given after the one used
  std::vector<plugins::IntRange> ports;
  std::vector<pid_t> pids;
  std::int64_t count = 0;
  std::vector<std::string> excluded;
  bool ignore_not_found = false;

  std::string describe() const { return matcher + " " + value; }
  json matcher_json() const { return {{"flag", matcher}, {"value", value}, {"ignored", ignored}}; }
};

std::optional<std::string> non_empty(const Request &req, std::string_view flag) {
  auto v = req.flag(flag);
  if (!v) return std::nullopt;
  if (v->empty()) throw sdk::InvalidArgument(std::string(flag) + ": must not be empty");
  return std::string(*v);
}

std::vector<plugins::IntRange> int_list(std::string_view flag, const std::string &value,
                                        const plugins::IntListRules &rules) {
  try {
    return plugins::parse_int_list(value, rules);
  } catch (const std::invalid_argument &e) {
    throw sdk::InvalidArgument(std::string(flag) + ": " + e.what());
  }
}

Selector parse_selector(const Request &req) {
  Selector s;
  for (std::string_view flag : kMatchers) {
    auto value = non_empty(req, flag);
    if (!value) continue;
    // Every matcher given is checked, the ignored ones too: a typo in any
    // of them is an error, never a silent no-op.
    if (flag == "local-port") {
      auto ports = int_list(flag, *value, {1, 65535, true, "port", "ports like 80,8000-8080"});
      if (s.matcher.empty()) s.ports = std::move(ports);
    } else if (flag == "pid") {
      auto pids = plugins::parse_pid_list(flag, *value);
      if (s.matcher.empty()) s.pids = std::move(pids);
    }
    if (s.matcher.empty()) {
      s.matcher = std::string(flag);
      s.value = *value;
    } else {
      s.ignored.emplace_back(flag);
    }
  }
  if (s.matcher.empty())
    throw sdk::InvalidArgument("process: one of process, process-cmd, local-port, pid is required");
  s.count = req.flag_int("count", 0);
  if (s.count < 0) throw sdk::InvalidArgument("count: must be 0 (all) or more");
  s.excluded = plugins::split_comma_list(req.flag_or("exclude-process", ""));
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
    std::map<pid_t, proc::Process> explicit_processes;
    if (s.matcher == "pid") {
      const pid_t parent = chain.size() > 1 ? chain[1] : 0;
      for (pid_t pid : s.pids) {
        const pid_t group = proc::thread_group_of(pid).value_or(pid);
        auto p = check_explicit_pid(pid, group, daemon, parent, protected_pids);
        if (parents.descends_from(group, daemon))
          throw sdk::InvalidArgument("pid: " + std::to_string(pid) +
                                     " is a child of bladed (one of its own helpers)");
        if (p) explicit_processes.emplace(group, std::move(*p));
      }
      for (const auto &[group, p] : explicit_processes)
        candidates.push_back(group);
    } else if (s.matcher == "local-port") {
      candidates = proc::socket_owners(proc::listening_inodes(s.ports));
    } else {
      candidates = proc::list_pids();
    }

    std::vector<proc::Process> out;
    for (pid_t pid : candidates) {
      if (protected_pids.count(pid)) continue;
      std::optional<proc::Process> p;
      if (auto it = explicit_processes.find(pid); it != explicit_processes.end()) {
        p = std::move(it->second);
      } else {
        p = proc::read_process(pid);
      }
      if (!p || p->dead() || p->kernel_thread()) continue;
      if (s.matcher != "pid") {
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
    return plugins::refuse_protected_pid("pid", pid, group, daemon, parent, protected_pids);
  }

  static bool is_blade(const proc::Process &p) { return plugins::is_blade_process(p); }

  static bool matches(const proc::Process &p, const Selector &s) {
    const std::string &text = searched_text(p);
    for (const auto &ex : s.excluded)
      if (text.find(ex) != std::string::npos) return false;
    if (s.matcher == "process") return text.find(s.value) != std::string::npos;
    if (s.matcher == "process-cmd") return comm_is(p, s.value);
    return true;  // pid and local-port chose the candidates already
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
    const int sig = signal_of(req);
    json plan = {{"action", action_},
                 {"signal", sig},
                 {"signal_name", signal_name(sig)},
                 {"matcher", s.matcher_json()},
                 {"processes", processes}};
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
    json result = {{"signal", sig},
                   {"signal_name", signal_name(sig)},
                   {"matcher", s.matcher_json()},
                   {"processes", signalled},
                   {"failed", failed}};
    json restore = {{"signal", sig}, {"signalled", signalled}};
    return {result.dump(), restore.dump()};
  }

  // A signal cannot be taken back; the record is only history.
  void destroy(const Request &, Call &) override {}

 protected:
  int signal_of(const Request &req) const override {
    const std::string value = req.flag_or("signal", "9");
    auto sig = parse_signal(value);
    if (!sig)
      throw sdk::InvalidArgument("signal: '" + value +
                                 "' is neither a signal number (1-64) nor a name such as TERM, "
                                 "SIGKILL or kill");
    return *sig;
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
        state_.roll_back(uid, "stop", [&] { undo(rec, uid); });
        throw;
      }
    }
    if (stopped.empty() && already.empty() && !hit.empty() && !s.ignore_not_found)
      throw sdk::FailedPrecondition(not_found_message(s) + " (all exited meanwhile)");
    host_.info("process stop: stopped " + std::to_string(stopped.size()) + " process(es)");
    json result = {
        {"matcher", s.matcher_json()}, {"processes", stopped}, {"already_stopped", already}};
    // ChaosBlade's stop lists a signal flag it never uses; so does Blade.
    if (req.flag("signal")) result["note"] = "signal is ignored: stop always sends SIGSTOP";
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
  table.add("process", "kill", std::make_unique<KillFault>(host));
  table.add("process", "stop", std::make_unique<StopFault>(host));
  register_process_load(table, host);
}

}  // namespace blade::os
