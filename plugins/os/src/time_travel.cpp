// time travel: the wall clock (CLOCK_REALTIME) shifted by `offset` until
// destroyed. The clock is not put back by subtracting the offset from
// whatever it reads at destroy (NTP, an admin or the RTC may have moved it
// meanwhile): the record keeps one (CLOCK_REALTIME, CLOCK_BOOTTIME) pair read
// before the shift, and destroy sets the clock to that real time plus the
// boot time elapsed since. CLOCK_BOOTTIME runs through suspend and is never
// set, so the reconstruction is right also after a daemon restart. After a
// reboot (another boot_id) the pair means nothing: the clock is left alone.
// With disableNtp (ChaosBlade's default), NTP sync is switched off through
// timedated over D-Bus for the fault and back on by destroy.
#include <time.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <blade/failpoint.hpp>
#include <nlohmann/json.hpp>

#include "../../common/go_duration.hpp"
#include "experiment_state.hpp"
#include "fault.hpp"
#include "sd_bus.hpp"

namespace blade::os {
namespace {

using nlohmann::json;

constexpr std::int64_t kNs = 1'000'000'000;
// Past this the shifted clock would leave what clock_settime accepts (and
// every timestamp a program stores); ChaosBlade's examples are hours.
constexpr std::int64_t kMaxOffsetNs = 100LL * 366 * 24 * 3600 * kNs;
// A clock within this of the reconstructed real time needs no setting.
constexpr std::int64_t kRestoredNs = 1'000'000;
constexpr const char *kClock = "clock:the wall clock (CLOCK_REALTIME)";

std::int64_t now_ns(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return ts.tv_sec * kNs + ts.tv_nsec;
}

std::string boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

std::string iso_utc(std::int64_t ns) {
  const time_t secs = static_cast<time_t>(ns / kNs);
  tm t{};
  ::gmtime_r(&secs, &t);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                static_cast<long long>((ns % kNs) / 1'000'000));
  return buf;
}

struct Offset {
  std::string text;
  std::int64_t ns = 0;
};

Offset parse_offset(const Request &req) {
  Offset o{req.flag_or("offset", ""), 0};
  if (o.text.empty()) throw sdk::InvalidArgument("offset: required, e.g. -2h3m50s, 5m or 1h");
  auto ns = plugins::go_duration_ns(o.text, kMaxOffsetNs);
  if (!ns)
    throw sdk::InvalidArgument("offset: not a duration like -2h3m50s, 5m30s or 1h (at most " +
                               std::string("100 years either way), got '") + o.text + "'");
  o.ns = *ns;
  const std::int64_t target = now_ns(CLOCK_REALTIME) + o.ns;
  if (target <= 0)
    throw sdk::InvalidArgument("offset: " + o.text + " would put the clock before 1970");
  return o;
}

constexpr const char *kTimedate = "org.freedesktop.timedate1";
constexpr const char *kTimedatePath = "/org/freedesktop/timedate1";

// NTP as timedated sees it: on, off, or nobody to ask (and why).
struct NtpState {
  std::optional<bool> on;
  std::string absent;  // why there is no answer
};

NtpState ntp_state() {
#if BLADE_HAVE_SDBUS
  try {
    SystemBus bus;
    if (!bus.bool_property("timedated", kTimedate, kTimedatePath, kTimedate, "CanNTP"))
      return {std::nullopt, "timedated reports no NTP service (CanNTP false)"};
    return {bus.bool_property("timedated", kTimedate, kTimedatePath, kTimedate, "NTP"), ""};
  } catch (const sdk::Error &e) {
    return {std::nullopt, e.what()};
  }
#else
  return {std::nullopt, "os plugin built without libsystemd (sd-bus)"};
#endif
}

void set_ntp([[maybe_unused]] bool on) {
#if BLADE_HAVE_SDBUS
  SystemBus bus;
  BusMessage reply;
  bus.call(reply, std::string("disableNtp: timedated SetNTP(") + (on ? "true" : "false") + ")",
           kTimedate, kTimedatePath, kTimedate, "SetNTP", "bb", on ? 1 : 0, 0);
#else
  throw sdk::FailedPrecondition("disableNtp: os plugin built without libsystemd (sd-bus)");
#endif
}

void set_clock(std::int64_t ns, const std::string &flag) {
  timespec ts{static_cast<time_t>(ns / kNs), static_cast<long>(ns % kNs)};
  if (::clock_settime(CLOCK_REALTIME, &ts) != 0) {
    const int e = errno;
    const std::string why =
        std::string("cannot set the wall clock to ") + iso_utc(ns) + ": " + std::strerror(e);
    if (e == EINVAL) throw sdk::InvalidArgument(flag + ": " + why);
    if (e == EPERM) throw sdk::PermissionDenied(flag + ": " + why + " (needs CAP_SYS_TIME)");
    throw sdk::FailedPrecondition(flag + ": " + why);
  }
}

void point([[maybe_unused]] const char *step) {
  BLADE_FAILPOINT(step);
}

class TimeTravel : public Fault {
 public:
  explicit TimeTravel(const Host &host) : host_(host), state_(host) {}

  Outcome create(const Request &req, Call &call) override {
    const Offset offset = parse_offset(req);
    const bool disable_ntp = req.flag_or("disableNtp", "true") != "false";
    const std::string uid(req.uid());
    // One (realtime, boottime) pair: boottime read on both sides of the
    // realtime read, the midpoint kept, so the pair is off by < 1 us.
    const std::int64_t boot_a = now_ns(CLOCK_BOOTTIME);
    const std::int64_t real = now_ns(CLOCK_REALTIME);
    const std::int64_t boot_b = now_ns(CLOCK_BOOTTIME);
    json rec = {{"fault", "time-travel"},
                {"offset", offset.text},
                {"offset_ns", offset.ns},
                {"real_ns", real},
                {"boot_ns", boot_a + (boot_b - boot_a) / 2},
                {"boot_id", boot_id()},
                {"ntp_disabled", false}};
    state_.checkpoint(call, uid, rec);
    std::string ntp = "left alone (disableNtp false)";
    try {
      state_.claim_exclusive("offset", kClock, uid);
      if (disable_ntp) {
        NtpState before = ntp_state();
        if (!before.on) {
          ntp = "nothing to disable: " + before.absent;
        } else if (!*before.on) {
          ntp = "already off (left off on destroy)";
        } else {
          rec["ntp_disabled"] = true;
          state_.checkpoint(call, uid, rec);
          point("os.time.travel.before_ntp");
          set_ntp(false);
          ntp = "disabled through timedated (enabled again on destroy)";
        }
      }
      point("os.time.travel.before_shift");
      set_clock(now_ns(CLOCK_REALTIME) + offset.ns, "offset");
      point("os.time.travel.after_shift");
    } catch (...) {
      state_.roll_back(uid, "create", [&] { undo(rec); });
      throw;
    }
    json result = {{"offset", offset.text},
                   {"offset_ms", offset.ns / 1'000'000},
                   {"clock_before", iso_utc(real)},
                   {"clock_now", iso_utc(now_ns(CLOCK_REALTIME))},
                   {"ntp", ntp},
                   {"restore",
                    "destroy sets the clock to the real time: the time before the shift plus "
                    "the CLOCK_BOOTTIME elapsed since (ChaosBlade reads it back from the RTC)"}};
    return {result.dump(), rec.dump()};
  }

  void destroy(const Request &req, Call &) override {
    undo(state_.record(req));
    state_.finish(req.uid());
  }

  std::string plan(const Request &req, Call &) override {
    const Offset offset = parse_offset(req);
    const bool disable_ntp = req.flag_or("disableNtp", "true") != "false";
    json out = {{"offset", offset.text},
                {"clock_now", iso_utc(now_ns(CLOCK_REALTIME))},
                {"clock_would_be", iso_utc(now_ns(CLOCK_REALTIME) + offset.ns)}};
    if (disable_ntp) {
      NtpState s = ntp_state();
      out["ntp"] = s.on ? (*s.on ? "on: would be disabled" : "already off")
                        : "nothing to disable: " + s.absent;
    }
    return out.dump();
  }

 private:
  // The clock back to the reconstructed real time (unless it is there
  // already: a crash before the shift, or a second destroy), then NTP.
  void undo(const json &rec) {
    if (!rec.contains("real_ns")) return;
    if (rec.value("boot_id", "") != boot_id()) {
      host_.warn(
          "time travel: the host rebooted since the clock was shifted; its clock was "
          "set at boot, so it is left as it is");
    } else {
      const std::int64_t boot = now_ns(CLOCK_BOOTTIME);
      const std::int64_t real =
          rec["real_ns"].get<std::int64_t>() + (boot - rec["boot_ns"].get<std::int64_t>());
      if (std::llabs(now_ns(CLOCK_REALTIME) - real) > kRestoredNs) {
        point("os.time.travel.destroy.before_restore");
        // Recomputed at the last instant, so the read above costs nothing.
        set_clock(rec["real_ns"].get<std::int64_t>() +
                      (now_ns(CLOCK_BOOTTIME) - rec["boot_ns"].get<std::int64_t>()),
                  "offset");
        point("os.time.travel.destroy.after_restore");
      }
    }
    if (rec.value("ntp_disabled", false)) {
      NtpState s = ntp_state();
      if (!s.on) throw sdk::FailedPrecondition("disableNtp: cannot enable NTP again: " + s.absent);
      if (!*s.on) set_ntp(true);
    }
  }

  Host host_;
  ExperimentState state_;
};

}  // namespace

void register_time_faults(FaultTable &table, const Host &host) {
  table.add("time", "travel", std::make_unique<TimeTravel>(host));
}

}  // namespace blade::os
