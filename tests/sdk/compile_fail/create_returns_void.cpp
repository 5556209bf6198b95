// create returns nothing, so there would be no restore record for destroy.
#include "plugin_stub.hpp"

class P {
 public:
  explicit P(stub::Host) {}
  void create(const stub::Request &, stub::Call &) {}
  void destroy(const stub::Request &, stub::Call &) {}
};
BLADE_PLUGIN(P, "p", "1.0.0", stub::kSpec)
