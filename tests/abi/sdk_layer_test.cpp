// The C++ layer as the host sees it: descriptors built from plugin classes,
// called through their C function pointers against a recording host.
#include <blade/fault_router.hpp>
#include <blade/plugin.hpp>

#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include <doctest/doctest.h>

namespace {

using blade::sdk::Call;
using blade::sdk::Host;
using blade::sdk::Outcome;
using blade::sdk::Request;

// A host stand-in: one call at a time, outputs kept by field.
struct FakeHost {
  blade_host_info info{};
  std::map<int, std::string> out;
  blade_host_api api{};

  explicit FakeHost(std::uint32_t info_size, const char *config_json) {
    info.struct_size = info_size;
    info.config_json = config_json;
    api.struct_size = sizeof api;
    api.abi_major = BLADE_PLUGIN_ABI_MAJOR;
    api.abi_minor = BLADE_PLUGIN_ABI_MINOR;
    api.log = [](blade_host *, blade_log_level, const char *) {};
    api.host_info = [](blade_host *h) {
      return static_cast<const blade_host_info *>(&reinterpret_cast<FakeHost *>(h)->info);
    };
    api.set_output = [](blade_call *c, blade_output_field f, const char *d, std::size_t n) {
      reinterpret_cast<FakeHost *>(c)->out[f] = std::string(d, n);
      return BLADE_STATUS_OK;
    };
    api.is_cancelled = [](blade_call *) { return 0; };
    api.remaining_ms = [](blade_call *) { return std::int64_t{1000}; };
    api.progress = [](blade_call *, std::int32_t, const char *) {};
  }
  blade_host *host() { return reinterpret_cast<blade_host *>(this); }
  blade_call *call() { return reinterpret_cast<blade_call *>(this); }
};

struct Req {
  blade_request r{};
  explicit Req(const char *target, const char *action) {
    r.struct_size = sizeof r;
    r.uid = "0123456789abcdef";
    r.scope = "host";
    r.target = target;
    r.action = action;
  }
};

// Reports the configuration it was given, as its result.
class Echo : public blade::sdk::Fault {
 public:
  explicit Echo(Host host) : host_(host) {}
  Outcome create(const Request &, Call &) override { return {host_.config_json(), "{}"}; }
  void destroy(const Request &, Call &) override {}

 private:
  Host host_;
};

// Reports from destroy (ABI 1.4) what the host said of an earlier report.
class Reporter : public blade::sdk::Fault {
 public:
  Outcome create(const Request &, Call &) override { return {}; }
  void destroy(const Request &, Call &call) override {
    const bool taken = call.report("[\"not an object\"]");
    call.report(std::string(R"({"first_taken":)") + (taken ? "true" : "false") + "}");
  }
};

class Routed : public blade::sdk::FaultRouter {
 public:
  static constexpr std::uint16_t abi_minor = 3;
  static constexpr const char *config_schema = R"({"type": "object"})";
  explicit Routed(Host host) : FaultRouter("routed") {
    add("echo", "config", std::make_unique<Echo>(host));
    add("echo", "report", std::make_unique<Reporter>());
  }
};

// Adds one pair twice: a bug the router must refuse at init.
class Twice : public blade::sdk::FaultRouter {
 public:
  explicit Twice(Host host) : FaultRouter("twice") {
    add("echo", "config", std::make_unique<Echo>(host));
    add("echo", "config", std::make_unique<Echo>(host));
  }
};

constexpr blade_plugin_descriptor kRouted =
    blade::sdk::detail::make_descriptor<Routed>("routed", "1.0.0", "items: []");

// Runs create of echo/config on a fresh instance; returns the status.
blade_status create_echo(FakeHost &h) {
  blade_instance *inst = nullptr;
  REQUIRE(kRouted.init(&h.api, h.host(), h.call(), &inst) == BLADE_STATUS_OK);
  Req req("echo", "config");
  blade_status s = kRouted.create(inst, &req.r, h.call());
  kRouted.shutdown(inst);
  return s;
}

}  // namespace

TEST_CASE("the descriptor carries abi_minor and config_schema of the class") {
  CHECK(kRouted.abi_minor == 3);
  CHECK(std::string(kRouted.config_schema) == R"({"type": "object"})");
  CHECK((kRouted.capabilities & BLADE_CAP_DRY_RUN) != 0);
}

TEST_CASE("Host::config_json gives the host's section, else {}") {
  SUBCASE("a 1.3 host with a section") {
    FakeHost h(sizeof(blade_host_info), R"({"level":2})");
    CHECK(create_echo(h) == BLADE_STATUS_OK);
    CHECK(h.out[BLADE_OUTPUT_RESULT] == R"({"level":2})");
  }
  SUBCASE("a 1.3 host that gives NULL") {
    FakeHost h(sizeof(blade_host_info), nullptr);
    CHECK(create_echo(h) == BLADE_STATUS_OK);
    CHECK(h.out[BLADE_OUTPUT_RESULT] == "{}");
  }
  SUBCASE("a 1.2 host: the field is outside struct_size and not read") {
    FakeHost h(offsetof(blade_host_info, config_json), R"({"stale":true})");
    CHECK(create_echo(h) == BLADE_STATUS_OK);
    CHECK(h.out[BLADE_OUTPUT_RESULT] == "{}");
  }
}

TEST_CASE("the router names an unrouted pair and a missing dry run") {
  FakeHost h(sizeof(blade_host_info), "{}");
  blade_instance *inst = nullptr;
  REQUIRE(kRouted.init(&h.api, h.host(), h.call(), &inst) == BLADE_STATUS_OK);
  Req unknown("echo", "nope");
  CHECK(kRouted.destroy(inst, &unknown.r, h.call()) == BLADE_STATUS_NOT_SUPPORTED);
  CHECK(h.out[BLADE_OUTPUT_MESSAGE] == "routed plugin: no code for echo nope");
  Req known("echo", "config");
  CHECK(kRouted.dry_run(inst, &known.r, h.call()) == BLADE_STATUS_NOT_SUPPORTED);
  CHECK(h.out[BLADE_OUTPUT_MESSAGE] == "no dry run for echo config");
  CHECK(kRouted.destroy(inst, &known.r, h.call()) == BLADE_STATUS_OK);
  kRouted.shutdown(inst);
}

TEST_CASE("Call::report hands destroy's report to the host as RESULT") {
  FakeHost h(sizeof(blade_host_info), "{}");
  // This stand-in takes only objects, as a 1.4 host does.
  h.api.set_output = [](blade_call *c, blade_output_field f, const char *d, std::size_t n) {
    if (f == BLADE_OUTPUT_RESULT && (n == 0 || d[0] != '{')) return BLADE_STATUS_INVALID_ARGUMENT;
    reinterpret_cast<FakeHost *>(c)->out[f] = std::string(d, n);
    return BLADE_STATUS_OK;
  };
  blade_instance *inst = nullptr;
  REQUIRE(kRouted.init(&h.api, h.host(), h.call(), &inst) == BLADE_STATUS_OK);
  Req req("echo", "report");
  CHECK(kRouted.destroy(inst, &req.r, h.call()) == BLADE_STATUS_OK);
  CHECK(h.out[BLADE_OUTPUT_RESULT] == R"({"first_taken":false})");
  kRouted.shutdown(inst);
}

TEST_CASE("a pair added twice fails init with a message naming it") {
  constexpr blade_plugin_descriptor d =
      blade::sdk::detail::make_descriptor<Twice>("twice", "1.0.0", "items: []");
  FakeHost h(sizeof(blade_host_info), "{}");
  blade_instance *inst = nullptr;
  CHECK(d.init(&h.api, h.host(), h.call(), &inst) == BLADE_STATUS_INTERNAL);
  CHECK(inst == nullptr);
  CHECK(h.out[BLADE_OUTPUT_MESSAGE] == "twice plugin: echo config is added twice");
}
