// dry_run takes the uid string instead of the Request: must not compile (it
// used to make the plugin silently lose its dry run).
#include "plugin_stub.hpp"

class P {
 public:
  explicit P(stub::Host) {}
  stub::Outcome create(const stub::Request &, stub::Call &) { return {}; }
  void destroy(const stub::Request &, stub::Call &) {}
  std::string dry_run(const std::string &, stub::Call &) { return "{}"; }
};
BLADE_PLUGIN(P, "p", "1.0.0", stub::kSpec)
