#include "sd_bus.hpp"

#if BLADE_HAVE_SDBUS

#include <cstdlib>
#include <cstring>

namespace blade::os {

std::string BusError::text(int r) const {
  if (e_.name) return std::string(e_.name) + (e_.message ? std::string(": ") + e_.message : "");
  return std::strerror(-r);
}

SystemBus::SystemBus() {
  int r = sd_bus_open_system(&bus_);
  if (r < 0) {
    const char *addr = std::getenv("DBUS_SYSTEM_BUS_ADDRESS");
    throw sdk::FailedPrecondition(std::string("no D-Bus system bus answers at ") +
                                  (addr ? addr : "/run/dbus/system_bus_socket") + ": " +
                                  std::strerror(-r));
  }
}

void SystemBus::fail(const std::string &what, const BusError &err, int r) {
  throw sdk::FailedPrecondition(what + ": " + err.text(r));
}

std::string SystemBus::string_property(const std::string &what, const char *dest, const char *path,
                                       const char *iface, const char *member) const {
  BusError err;
  char *value = nullptr;
  int r = sd_bus_get_property_string(bus_, dest, path, iface, member, err.get(), &value);
  if (r < 0) fail(what, err, r);
  std::string out = value ? value : "";
  std::free(value);
  return out;
}

bool SystemBus::bool_property(const std::string &what, const char *dest, const char *path,
                              const char *iface, const char *member) const {
  BusError err;
  int value = 0;
  int r = sd_bus_get_property_trivial(bus_, dest, path, iface, member, err.get(), 'b', &value);
  if (r < 0) fail(what, err, r);
  return value != 0;
}

}  // namespace blade::os

#endif
