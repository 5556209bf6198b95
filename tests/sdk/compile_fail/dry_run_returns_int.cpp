// dry_run returns a number instead of the plan's JSON text.
#include "plugin_stub.hpp"

class P {
 public:
  explicit P(stub::Host) {}
  stub::Outcome create(const stub::Request &, stub::Call &) { return {}; }
  void destroy(const stub::Request &, stub::Call &) {}
  int dry_run(const stub::Request &, stub::Call &) { return 0; }
};
BLADE_PLUGIN(P, "p", "1.0.0", stub::kSpec)
