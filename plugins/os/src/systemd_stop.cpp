// systemd stop: a running unit stopped through systemd's D-Bus API
// (org.freedesktop.systemd1, via sd-bus) and started again by destroy. The
// record, saved before the stop, says which unit was active, so destroy (also after a daemon
// restart) starts it only when it is not running: a unit someone started again in the meantime is
// left alone, and one the fault never got to stop (a crash between the record and the stop) is
// still active, so nothing is done.
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include <blade/failpoint.hpp>
#include <nlohmann/json.hpp>

#include "experiment_state.hpp"
#include "fault.hpp"
#include "sd_bus.hpp"

namespace blade::os {
namespace {

using nlohmann::json;

// ChaosBlade answers a unit that is missing or not running with this code.
constexpr const char *kNotFound = " (ChaosBlade 66001 SystemdNotFound)";

// systemctl's reading of a name: one without a unit type suffix is a service.
std::string unit_name(const Request &req) {
  const std::string given = req.flag_or("service", "");
  if (given.empty()) throw sdk::InvalidArgument("service: required, e.g. --service nginx");
  if (given.size() > 250 ||
      given.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:-_."
                              "\\@") != std::string::npos ||
      given[0] == '.' || given[0] == '-')
    throw sdk::InvalidArgument("service: not a systemd unit name: '" + given + "'");
  for (const char *type : {".service", ".socket", ".target", ".device", ".mount", ".automount",
                           ".swap", ".timer", ".path", ".slice", ".scope"})
    if (given.ends_with(type) && given.size() > std::string_view(type).size()) return given;
  return given + ".service";
}

#if BLADE_HAVE_SDBUS

constexpr const char *kSystemd = "org.freedesktop.systemd1";
constexpr const char *kManagerPath = "/org/freedesktop/systemd1";
constexpr const char *kManager = "org.freedesktop.systemd1.Manager";
constexpr const char *kUnitIface = "org.freedesktop.systemd1.Unit";

// The system bus, or "systemd is not answering" with the reason.
struct Systemd {
  SystemBus bus;
  static Systemd connect() try { return Systemd(); } catch (const sdk::Error &e) {
    throw sdk::FailedPrecondition(std::string("service: systemd is not answering: ") + e.what() +
                                  kNotFound);
  }

  // The unit's object path, or "" when systemd has not loaded it.
  std::string unit_path(const std::string &unit) const {
    BusMessage reply;
    const std::string err =
        bus.try_call(reply, kSystemd, kManagerPath, kManager, "GetUnit", "s", unit.c_str());
    if (err == "org.freedesktop.systemd1.NoSuchUnit") return "";
    if (!err.empty())
      throw sdk::FailedPrecondition("service: systemd is not answering: " + err + kNotFound);
    const char *path = nullptr;
    if (sd_bus_message_read(reply.get(), "o", &path) < 0 || !path)
      throw sdk::FailedPrecondition("service: systemd sent no unit path for " + unit);
    return path;
  }
  std::string unit_property(const std::string &path, const char *name) const {
    return bus.string_property(std::string("service: reading ") + name, kSystemd, path.c_str(),
                               kUnitIface, name);
  }
  // The unit of a process (bladed's own, so it is never stopped), or "".
  std::string unit_of_pid(pid_t pid) const {
    BusMessage reply;
    if (!bus.try_call(reply, kSystemd, kManagerPath, kManager, "GetUnitByPID", "u",
                      static_cast<std::uint32_t>(pid))
             .empty())
      return "";
    const char *path = nullptr;
    if (sd_bus_message_read(reply.get(), "o", &path) < 0 || !path) return "";
    return unit_property(path, "Id");
  }
  // Queues a start or stop job; its object path.
  std::string job(const char *method, const std::string &unit) const {
    BusMessage reply;
    bus.call(reply, std::string("service: systemd ") + method + " " + unit, kSystemd, kManagerPath,
             kManager, method, "ss", unit.c_str(), "replace");
    const char *path = nullptr;
    if (sd_bus_message_read(reply.get(), "o", &path) < 0 || !path)
      throw sdk::FailedPrecondition(std::string("service: systemd sent no job for ") + method);
    return path;
  }
  // True while the job object exists: systemd removes it once the job ran.
  bool job_pending(const std::string &path) const {
    BusMessage reply;
    return bus
        .try_call(reply, kSystemd, path.c_str(), "org.freedesktop.DBus.Properties", "Get", "ss",
                  "org.freedesktop.systemd1.Job", "State")
        .empty();
  }
};

bool running(const std::string &state) {
  return state == "active" || state == "reloading" || state == "activating";
}

// Waits until systemd has run the job (up to 90 s, or the call's deadline);
// the unit's ActiveState then.
std::string wait_job(const Systemd &sd, const std::string &job, const std::string &unit_path,
                     const Call *call) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (sd.job_pending(job) && std::chrono::steady_clock::now() < deadline) {
    if (call) {
      call->check();
      if (call->remaining_ms() >= 0 && call->remaining_ms() < 50) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return sd.unit_property(unit_path, "ActiveState");
}

// The unit as create finds it: loaded, running, not bladed's own.
struct Found {
  std::string unit, path, state, invocation;
};

Found find_running(const Systemd &sd, const Request &req, const Host &host) {
  Found f;
  f.unit = unit_name(req);
  f.path = sd.unit_path(f.unit);
  if (f.path.empty())
    throw sdk::FailedPrecondition("service: unit " + f.unit + " is not loaded, so not running" +
                                  kNotFound);
  f.unit = sd.unit_property(f.path, "Id");  // an alias resolves to the unit itself
  f.state = sd.unit_property(f.path, "ActiveState");
  if (!running(f.state))
    throw sdk::FailedPrecondition("service: unit " + f.unit + " is " + f.state +
                                  ", not running: nothing to stop" + kNotFound);
  if (f.unit == "dbus.service" || f.unit == "dbus.socket")
    throw sdk::InvalidArgument("service: refused: " + f.unit +
                               " carries the bus that would start it again");
  if (host.daemon_pid() > 0 && sd.unit_of_pid(host.daemon_pid()) == f.unit)
    throw sdk::InvalidArgument("service: refused: " + f.unit + " is bladed's own unit");
  return f;
}

#endif

class SystemdStop : public Fault {
 public:
  explicit SystemdStop(const Host &host) : host_(host), state_(host) {}

#if BLADE_HAVE_SDBUS
  Outcome create(const Request &req, Call &call) override {
    unit_name(req);  // bad input first, before any bus
    Systemd sd = Systemd::connect();
    Found f = find_running(sd, req, host_);
    const std::string uid(req.uid());
    const json rec = {{"fault", "systemd-stop"}, {"unit", f.unit}, { "was", f.state }};
    state_.checkpoint(call, uid, rec);
    std::string now;
    try {
      state_.claim_exclusive("service", "unit:" + f.unit, uid);
      BLADE_FAILPOINT("os.systemd.stop.before_stop");
      const std::string job = sd.job("StopUnit", f.unit);
      BLADE_FAILPOINT("os.systemd.stop.after_stop");
      now = wait_job(sd, job, f.path, &call);
      if (running(now) || now == "deactivating")
        throw sdk::FailedPrecondition("service: " + f.unit + " is still " + now +
                                      " after the stop; started again");
    } catch (...) {
      state_.roll_back(uid, "create", [&] { undo(rec, nullptr); });
      throw;
    }
    json result = {{"service", f.unit}, {"was", f.state}, {"now", now}, {
                     "restore",
                     "started again by destroy unless it is running by then"
                   }};
    return {result.dump(), rec.dump()};
  }

  void destroy(const Request &req, Call &) override {
    undo(state_.record(req), nullptr);
    state_.finish(req.uid());
  }

  std::string plan(const Request &req, Call &) override {
    unit_name(req);
    Systemd sd = Systemd::connect();
    Found f = find_running(sd, req, host_);
    return json{{"service", f.unit},
                {"state", f.state},
                { "would",
                  "stop, start on destroy" }}
        .dump();
  }

 private:
  // Starts the unit again unless it runs: never stopped (a crash before the
  // stop) or started by someone since. Waits until it is active.
  void undo(const json &rec, const Call *call) {
    if (!rec.contains("unit")) return;
    const std::string unit = rec["unit"];
    Systemd sd = Systemd::connect();
    const std::string path = sd.unit_path(unit);
    if (!path.empty() && running(sd.unit_property(path, "ActiveState"))) return;
    BLADE_FAILPOINT("os.systemd.stop.destroy.before_start");
    const std::string job = sd.job("StartUnit", unit);
    BLADE_FAILPOINT("os.systemd.stop.destroy.after_start");
    const std::string loaded = sd.unit_path(unit);
    if (loaded.empty()) throw sdk::FailedPrecondition("service: " + unit + " vanished on start");
    const std::string state = wait_job(sd, job, loaded, call);
    if (!running(state))
      throw sdk::FailedPrecondition("service: " + unit + " did not start again: it is " + state);
  }
#else
  Outcome create(const Request &, Call &) override {
    throw unsupported();
  }
  void destroy(const Request &req, Call &) override {
    if (state_.record(req).contains("unit")) throw unsupported();
    state_.finish(req.uid());
  }
  std::string plan(const Request &, Call &) override {
    throw unsupported();
  }

 private:
  static sdk::NotSupported unsupported() {
    return sdk::NotSupported("systemd stop: this os plugin was built without libsystemd (sd-bus)");
  }
#endif

  Host host_;
  ExperimentState state_;
};

}  // namespace

void register_systemd_faults(FaultTable &table, const Host &host) {
  table.add("systemd", "stop", std::make_unique<SystemdStop>(host));
}

}  // namespace blade::os
