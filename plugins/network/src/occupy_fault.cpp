// network occupy: the daemon holds a TCP port (occupy_socket.hpp) until
// destroy, so no other process can bind it. A port someone else holds is a
// 409 naming the holder; with force the holder is stopped first
// (port_holders.hpp), as ChaosBlade's --force kills it, unless the pid
// guard protects it. One occupy per port and namespace (a claim under the
// plugin's state dir). The socket belongs to the daemon process, so it
// dies with it: a destroy after a restart finds nothing to close and says
// so; a stopped holder is never started again (the plugin cannot know how
// it was started).
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <blade/failpoint.hpp>
#include <nlohmann/json.hpp>

#include "../../common/proc_reader.hpp"
#include "../../common/experiment_dirs.hpp"
#include "fault_families.hpp"
#include "net_selectors.hpp"
#include "occupy_socket.hpp"
#include "port_holders.hpp"

namespace blade::network {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// How long a holder has to exit after SIGTERM, then after SIGKILL.
constexpr auto kTermWait = 3000ms;
constexpr auto kKillWait = 2000ms;
// A holder that exited may leave its socket a moment longer (its last
// references are dropped after the exit is visible): bind is retried.
constexpr auto kRebindWait = 1000ms;

constexpr const char *kNotRestarted =
    "a process stopped by force is not started again by destroy: start it yourself";

// The one port flag, a single port (the spec types it; a plugin trusts no input).
std::uint16_t port_of(const sdk::Request &req) {
  const auto value = req.flag("port");
  if (!value || value->empty()) throw sdk::InvalidArgument("port: required, a port 1-65535");
  const auto ranges = parse_ports("port", *value);
  if (ranges.size() != 1 || ranges[0].first != ranges[0].last)
    throw sdk::InvalidArgument("port: one port, not a list or a range: " + std::string(*value));
  return ranges[0].first;
}

struct Plan {
  std::uint16_t port = 0;
  bool force = false;
  unsigned long netns = 0;
  std::string resource;  // the claim: "port:tcp 8080 in netns 4026531840"
  // Filled when the port is free now: the socket that holds it.
  std::optional<PortListener> listener;
  // Who holds the port when it is not free.
  std::vector<PortHolder> holders;
};

class OccupyFault : public sdk::Fault {
 public:
  explicit OccupyFault(sdk::Host host)
      : host_(host),
        dirs_(plugins::ExperimentDirs::under_state(host, "occupy/experiments"),
              plugins::ExperimentDirs::under_state(host, "occupy/claims")) {}

  sdk::Outcome create(const sdk::Request &req, sdk::Call &call) override {
    const std::string uid(req.uid());
    Plan plan = check(req, true);
    const auto [daemon, daemon_start] = daemon_identity();
    json record = {{"port", plan.port},
                   {"netns", plan.netns},
                   {"resource", plan.resource},
                   {"daemon_pid", daemon},
                   {"daemon_start_time", daemon_start}};
    if (!plan.listener) {
      record["stopping"] = json::array();
      for (const auto &h : plan.holders)
        record["stopping"].push_back(h.describe());
    }
    // The claim is the one step that outlives the daemon: recorded first.
    dirs_.checkpoint(call, uid, record);
    std::vector<Stopped> stopped;
    try {
      dirs_.take(
          "port", plan.resource, uid,
          json{{"daemon_pid", daemon}, {"daemon_start_time", daemon_start}},
          [&](const std::string &other) { return other == plan.resource; }, other_daemon());
      BLADE_FAILPOINT("network.occupy.after_claim");
      if (!plan.listener) {
        stopped = stop_holders(plan.holders, call, kTermWait, kKillWait);
        for (const auto &st : stopped)
          host_.warn("experiment " + uid + ": stopped pid " + std::to_string(st.holder.pid) + " (" +
                     st.holder.comm + ") with " +
                     (st.signal.empty() ? "nothing (gone already)" : st.signal) +
                     " to occupy port " + std::to_string(plan.port));
        BLADE_FAILPOINT("network.occupy.after_stop");
        plan.listener = listen_after_stop(plan, stopped);
      }
    } catch (...) {
      dirs_.finish(uid);
      throw;
    }
    json result = {{"port", plan.port},
                   {"protocol", "tcp"},
                   {"addresses", plan.listener->addresses},
                   {"netns", plan.netns},
                   {"stopped", json::array()}};
    for (const auto &s : stopped)
      result["stopped"].push_back(s.describe());
    if (!stopped.empty()) result["note"] = kNotRestarted;
    record["addresses"] = plan.listener->addresses;
    record["stopped"] = result["stopped"];
    record.erase("stopping");
    {
      std::lock_guard lock(mu_);
      held_[uid] = std::move(*plan.listener);
    }
    host_.info("experiment " + uid + ": port " + std::to_string(plan.port) + " occupied");
    return {result.dump(), record.dump()};
  }

  // The destroy's report: "released" true when this daemon closed the
  // socket, else "already_gone" saying why there was none (it died with the
  // daemon that made it, or create never held one); and the processes
  // create stopped, which stay stopped.
  void destroy(const sdk::Request &req, sdk::Call &call) override {
    const std::string uid(req.uid());
    const json record = dirs_.record(req);
    const std::string port = record.contains("port") ? record["port"].dump() : "?";
    std::optional<PortListener> closing;
    {
      std::lock_guard lock(mu_);
      if (auto it = held_.find(uid); it != held_.end()) {
        closing = std::move(it->second);
        held_.erase(it);
      }
    }
    json report = {{"port", record.contains("port") ? record["port"] : json()},
                   {"released", closing.has_value()}};
    BLADE_FAILPOINT("network.occupy.destroy.before_close");
    std::string why;
    if (closing) {
      closing.reset();  // closes the listener: the port is free
      host_.info("experiment " + uid + ": port " + port + " released");
    } else if (this_daemon(record)) {
      why = "no socket to close; its create ended before it held one";
    } else {
      why = "no socket to close; it died with the daemon that made it (pid " +
            (record.contains("daemon_pid") ? record["daemon_pid"].dump() : "?") +
            "), so the port was free already";
    }
    if (!why.empty()) {
      host_.info("experiment " + uid + ": port " + port + ": " + why);
      report["already_gone"] = why;
    }
    // Whom create stopped, from its final record (the host's); the local
    // copy is the one written ahead, naming whom a create that never
    // returned was about to stop ("stopping": some may be stopped).
    const json stopped = final_record(req).value("stopped", json::array());
    const json stopping = record.value("stopping", json::array());
    if (!stopped.empty())
      report["stopped"] = stopped;
    else if (!stopping.empty())
      report["stopping"] = stopping;
    if (!stopped.empty() || !stopping.empty()) report["note"] = kNotRestarted;
    call.report(report.dump());
    dirs_.finish(uid);
  }

  std::string dry_run(const sdk::Request &req, sdk::Call &) override {
    Plan plan = check(req, false);
    json out = {{"port", plan.port}, {"protocol", "tcp"}, {"netns", plan.netns}};
    out["free"] = plan.holders.empty();
    out["would_stop"] = json::array();
    for (const auto &h : plan.holders)
      out["would_stop"].push_back(h.describe());
    return out.dump();
  }

 private:
  // The RESTORE output of a create that returned (an empty object when
  // there is none, or only a record written ahead).
  static json final_record(const sdk::Request &req) {
    const auto text = req.restore_json();
    json j = text ? json::parse(*text, nullptr, false) : json();
    return j.is_object() ? j : json::object();
  }

  std::pair<pid_t, std::uint64_t> daemon_identity() const {
    const pid_t daemon = host_.daemon_pid() > 0 ? host_.daemon_pid() : ::getpid();
    return {daemon, plugins::proc::start_time_of(daemon).value_or(0)};
  }

  // Everything decided before anything changes; each refusal names why.
  // With `take`, the port is bound when it is free (the socket is kept in
  // the plan: a port checked free and bound later could be taken in
  // between); without (a dry run), the socket tables alone say who holds it.
  Plan check(const sdk::Request &req, bool take) {
    Plan plan;
    plan.port = port_of(req);
    plan.force = req.flag_bool("force");
    plan.netns = netns_inode();
    plan.resource =
        "port:tcp " + std::to_string(plan.port) + " in netns " + std::to_string(plan.netns);
    const std::string uid(req.uid());
    if (auto c = dirs_.conflict(
            uid, [&](const std::string &other) { return other == plan.resource; },
            other_daemon()))
      throw sdk::AlreadyExists("port: " + std::to_string(plan.port) +
                               " is already occupied by active experiment " + c->uid +
                               "; destroy it first");
    const pid_t daemon = daemon_identity().first;
    if (!daemon_listeners(plan.port, daemon).empty())
      throw sdk::InvalidArgument("port: " + std::to_string(plan.port) +
                                 " is bladed's own API port (the daemon listens on it); it is "
                                 "never occupied, force or not");
    if (!take) {
      const auto inodes = tcp_inodes_on(plan.port, daemon);
      if (!inodes.empty()) {
        plan.holders = port_holders(inodes, daemon);
        refuse_held(plan);
      }
      return plan;
    }
    PortListener l;
    const int err = listen_everywhere(plan.port, l);
    if (err == 0) {
      plan.listener = std::move(l);
      return plan;
    }
    if (err != EADDRINUSE)
      throw sdk::FailedPrecondition("port: cannot listen on " + std::to_string(plan.port) + ": " +
                                    std::strerror(err));
    plan.holders = port_holders(tcp_inodes_on(plan.port, daemon), daemon);
    refuse_held(plan);
    return plan;
  }

  // The daemon's own listeners on `port`, the ones occupy holds left out.
  std::set<unsigned long> daemon_listeners(std::uint16_t port, pid_t daemon) {
    auto out = own_listeners_on(port, daemon);
    std::lock_guard lock(mu_);
    for (const auto &[uid, l] : held_)
      out.erase(l.inode);
    return out;
  }

  // A port in use is only taken with force, and never from a process the
  // pid guard protects.
  static void refuse_held(const Plan &plan) {
    const std::string port = std::to_string(plan.port);
    if (plan.holders.empty())
      throw sdk::AlreadyExists("port: " + port +
                               " is in use, but no process holding it was found (a socket bound "
                               "without listening, or one passed out of this namespace); "
                               "nothing was changed");
    if (!plan.force)
      throw sdk::AlreadyExists("port: " + port + " is in use by " + holder_list(plan.holders) +
                               "; add force to stop it first");
    for (const auto &h : plan.holders)
      if (!h.protected_why.empty())
        throw sdk::AlreadyExists("port: " + port + " is held by pid " + std::to_string(h.pid) +
                                 " (" + h.comm + "), which " + h.protected_why +
                                 ": force never stops it; nothing was changed");
  }

  // Binds once the holders are gone, retrying briefly; a port still in use
  // then (someone else took it, or a holder we did not see) names who.
  PortListener listen_after_stop(const Plan &plan, const std::vector<Stopped> &stopped) {
    const auto deadline = std::chrono::steady_clock::now() + kRebindWait;
    for (;;) {
      PortListener l;
      const int err = listen_everywhere(plan.port, l);
      if (err == 0) return l;
      if (err != EADDRINUSE || std::chrono::steady_clock::now() >= deadline) {
        const pid_t daemon = daemon_identity().first;
        auto now = port_holders(tcp_inodes_on(plan.port, daemon), daemon);
        std::vector<PortHolder> was;
        for (const auto &s : stopped)
          was.push_back(s.holder);
        throw sdk::FailedPrecondition(
            "port: " + std::to_string(plan.port) + " still cannot be bound after stopping " +
            holder_list(was) + ": " + std::strerror(err) +
            (now.empty() ? std::string() : "; now held by " + holder_list(now)) + "; " +
            kNotRestarted);
      }
      std::this_thread::sleep_for(20ms);
    }
  }

  // True when `note` (a record, a claim's note) names this very daemon
  // process: pid and start time, as a restarted daemon may get the pid back.
  bool this_daemon(const json &note) const {
    const auto [daemon, start] = daemon_identity();
    return note.is_object() && note.value("daemon_pid", 0) == daemon &&
           note.value("daemon_start_time", std::uint64_t{0}) == start;
  }

  // A claim of a daemon that is gone held a socket that died with it (a
  // claim whose experiment dir is gone is stale by the common rule).
  std::function<bool(const plugins::Claim &)> other_daemon() const {
    return [this](const plugins::Claim &c) { return !this_daemon(c.note); };
  }

  sdk::Host host_;
  plugins::ExperimentDirs dirs_;
  std::mutex mu_;
  std::map<std::string, PortListener> held_;  // uid -> the socket holding its port
};

}  // namespace

void add_occupy_fault(sdk::FaultRouter &router, sdk::Host host) {
  router.add("network", "occupy", std::make_unique<OccupyFault>(host));
}

}  // namespace blade::network
