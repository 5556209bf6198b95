// The control: every hook and setting in an accepted form compiles, and the
// descriptor carries what the class declared. If this stops compiling, the
// checks reject valid plugins and the failing cases prove nothing.
#include <cstdint>
#include <memory>

#include <blade/fault_router.hpp>

#include "plugin_stub.hpp"

// Hand-written hooks, with the optional ones in forms the layer accepts: a
// const dry_run, an overload set with one matching member, every setting.
class Full {
 public:
  static constexpr bool concurrent_calls = true;
  static constexpr std::uint16_t abi_minor = BLADE_PLUGIN_ABI_MINOR;
  static constexpr const char *config_schema = R"({"type": "object"})";
  explicit Full(stub::Host) {}
  stub::Outcome create(const stub::Request &, stub::Call &) { return {}; }
  void destroy(const stub::Request &, stub::Call &) {}
  std::string dry_run(const stub::Request &, stub::Call &) const { return "{}"; }
  std::string dry_run(int) const { return "{}"; }
};
BLADE_PLUGIN(Full, "full", "1.0.0", stub::kSpec)

constexpr blade_plugin_descriptor kFull =
    blade::sdk::detail::make_descriptor<Full>("full", "1.0.0", stub::kSpec);
static_assert(kFull.abi_minor == BLADE_PLUGIN_ABI_MINOR);
static_assert(kFull.capabilities == (BLADE_CAP_DRY_RUN | BLADE_CAP_CONCURRENT_CALLS));
static_assert(kFull.config_schema == Full::config_schema);
static_assert(kFull.dry_run == &blade::sdk::detail::dry_run<Full>);
static_assert(kFull.create == &blade::sdk::detail::create<Full>);

// The least a plugin needs: no optional hook, no setting.
class Bare {
 public:
  explicit Bare(stub::Host) {}
  stub::Outcome create(const stub::Request &, stub::Call &) { return {}; }
  void destroy(const stub::Request &, stub::Call &) {}
};
constexpr blade_plugin_descriptor kBare =
    blade::sdk::detail::make_descriptor<Bare>("bare", "1.0.0", stub::kSpec);
static_assert(kBare.abi_minor == 0 && kBare.capabilities == 0);
static_assert(kBare.dry_run == nullptr && kBare.config_schema == nullptr);

// create, destroy and dry_run inherited from the SDK's router.
class Routed : public blade::sdk::FaultRouter {
 public:
  explicit Routed(stub::Host) : FaultRouter("routed") {}
};
constexpr blade_plugin_descriptor kRouted =
    blade::sdk::detail::make_descriptor<Routed>("routed", "1.0.0", stub::kSpec);
static_assert(kRouted.capabilities == BLADE_CAP_DRY_RUN);
static_assert(kRouted.destroy == &blade::sdk::detail::destroy<Routed>);

// A final class (no derivation for the name probe) is still checked by &P::x.
class Sealed final {
 public:
  explicit Sealed(stub::Host) {}
  stub::Outcome create(const stub::Request &, stub::Call &) { return {}; }
  void destroy(const stub::Request &, stub::Call &) {}
  std::string dry_run(const stub::Request &, stub::Call &) { return "{}"; }
};
static_assert(blade::sdk::detail::make_descriptor<Sealed>("s", "1", stub::kSpec).dry_run ==
              &blade::sdk::detail::dry_run<Sealed>);
