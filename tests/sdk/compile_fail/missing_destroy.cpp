// No destroy at all: a fault that could never be undone.
#include "plugin_stub.hpp"

class P {
 public:
  explicit P(stub::Host) {}
  stub::Outcome create(const stub::Request &, stub::Call &) { return {}; }
};
BLADE_PLUGIN(P, "p", "1.0.0", stub::kSpec)
