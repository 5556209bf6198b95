// Claims to need a host minor newer than the SDK header it is built with.
#include <cstdint>

#include "plugin_stub.hpp"

class P {
 public:
  static constexpr std::uint16_t abi_minor = BLADE_PLUGIN_ABI_MINOR + 1;
  explicit P(stub::Host) {}
  stub::Outcome create(const stub::Request &, stub::Call &) { return {}; }
  void destroy(const stub::Request &, stub::Call &) {}
};
BLADE_PLUGIN(P, "p", "1.0.0", stub::kSpec)
