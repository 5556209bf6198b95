// A small owner of sd-bus (libsystemd) objects for the faults that talk to
// systemd: `systemd stop` (org.freedesktop.systemd1) and `time travel`'s
// disableNtp (org.freedesktop.timedate1). Every handle frees itself, and a
// failed call is an sdk::FailedPrecondition carrying the bus error's name
// and message, so a caller only adds what it was trying to do.
#pragma once

#include <string>

#include <blade/plugin.hpp>

#if BLADE_HAVE_SDBUS
#include <systemd/sd-bus.h>
#endif

namespace blade::os {

#if BLADE_HAVE_SDBUS

// A reply message; unreferenced when it goes.
class BusMessage {
 public:
  BusMessage() = default;
  BusMessage(const BusMessage &) = delete;
  BusMessage &operator=(const BusMessage &) = delete;
  ~BusMessage() { sd_bus_message_unref(m_); }
  sd_bus_message *get() const { return m_; }
  sd_bus_message **out() { return &m_; }

 private:
  sd_bus_message *m_ = nullptr;
};

// An sd_bus_error; freed when it goes.
class BusError {
 public:
  BusError() = default;
  BusError(const BusError &) = delete;
  BusError &operator=(const BusError &) = delete;
  ~BusError() { sd_bus_error_free(&e_); }
  sd_bus_error *get() { return &e_; }
  // The error's D-Bus name (org.freedesktop.systemd1.NoSuchUnit ...), or "".
  std::string name() const { return e_.name ? e_.name : ""; }
  // "<name>: <message>", or strerror(-r) when the bus gave no error.
  std::string text(int r) const;

 private:
  sd_bus_error e_ = SD_BUS_ERROR_NULL;
};

// A connection to the system bus (where systemd and timedated answer).
class SystemBus {
 public:
  // Throws FailedPrecondition naming the socket and the reason when no bus
  // answers (a host whose PID 1 is not systemd, a container without D-Bus).
  SystemBus();
  SystemBus(const SystemBus &) = delete;
  SystemBus &operator=(const SystemBus &) = delete;
  ~SystemBus() { sd_bus_flush_close_unref(bus_); }

  sd_bus *get() const { return bus_; }

  // A method call; throws FailedPrecondition "<what>: <bus error>" on error.
  template <class... Args>
  void call(BusMessage &reply, const std::string &what, const char *dest, const char *path,
            const char *iface, const char *member, const char *types, Args... args) const {
    BusError err;
    int r =
        sd_bus_call_method(bus_, dest, path, iface, member, err.get(), reply.out(), types, args...);
    if (r < 0) fail(what, err, r);
  }
  // Like call, but a bus error is handed back (its D-Bus name) instead of
  // thrown; "" on success. For errors that are answers (NoSuchUnit).
  template <class... Args>
  std::string try_call(BusMessage &reply, const char *dest, const char *path, const char *iface,
                       const char *member, const char *types, Args... args) const {
    BusError err;
    int r =
        sd_bus_call_method(bus_, dest, path, iface, member, err.get(), reply.out(), types, args...);
    if (r >= 0) return "";
    return err.name().empty() ? err.text(r) : err.name();
  }

  std::string string_property(const std::string &what, const char *dest, const char *path,
                              const char *iface, const char *member) const;
  bool bool_property(const std::string &what, const char *dest, const char *path, const char *iface,
                     const char *member) const;

  [[noreturn]] static void fail(const std::string &what, const BusError &err, int r);

 private:
  sd_bus *bus_ = nullptr;
};

#endif

}  // namespace blade::os
