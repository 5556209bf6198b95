// Two dry_run overloads, neither of the expected form: &P::dry_run cannot
// name an overload set, so this proves the name is still found.
#include "plugin_stub.hpp"

class P {
 public:
  explicit P(stub::Host) {}
  stub::Outcome create(const stub::Request &, stub::Call &) { return {}; }
  void destroy(const stub::Request &, stub::Call &) {}
  std::string dry_run(const stub::Request &) { return "{}"; }
  std::string dry_run(stub::Call &) { return "{}"; }
};
BLADE_PLUGIN(P, "p", "1.0.0", stub::kSpec)
