// The C++ layer as the host sees it: descriptors built from plugin classes,
// called through their C function pointers against a recording host.
#include <blade/counters.hpp>
#include <blade/fault_router.hpp>
#include <blade/plugin.hpp>

#include <cstddef>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

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

// Promises a create that leaves nothing before its first record (ABI 1.6).
class Promising : public blade::sdk::FaultRouter {
 public:
  static constexpr bool writes_ahead = true;
  explicit Promising(Host host) : FaultRouter("promising") {
    add("echo", "config", std::make_unique<Echo>(host));
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

TEST_CASE("writes_ahead in the class sets BLADE_CAP_WRITES_AHEAD; its absence leaves it clear") {
  constexpr blade_plugin_descriptor promising =
      blade::sdk::detail::make_descriptor<Promising>("promising", "1.0.0", "items: []");
  CHECK((promising.capabilities & BLADE_CAP_WRITES_AHEAD) != 0);
  CHECK((kRouted.capabilities & BLADE_CAP_WRITES_AHEAD) == 0);
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

namespace {

// A 1.5 host stand-in for the topic and counters functions: one topic,
// "t", whose document the test sets with publish(); other topics are
// unknown (subscribe answers 0).
struct TopicHost {
  blade_host_api api{};
  std::string doc = R"({"v":0})";
  std::map<std::uint64_t, std::pair<blade_topic_fn, void *>> subs;
  std::uint64_t next = 7;
  std::vector<std::uint64_t> ended;
  std::vector<std::string> logs;
  std::vector<std::pair<std::string, std::string>> reports;  // uid, json

  explicit TopicHost(std::uint16_t minor) {
    api.struct_size = minor >= 5 ? sizeof api : offsetof(blade_host_api, subscribe);
    api.abi_major = BLADE_PLUGIN_ABI_MAJOR;
    api.abi_minor = minor;
    api.log = [](blade_host *h, blade_log_level, const char *m) { self(h)->logs.emplace_back(m); };
    // Set even for a 1.4 table: a reader must not look past struct_size.
    api.subscribe = [](blade_host *h, const char *topic, blade_topic_fn fn, void *ctx) {
      TopicHost *t = self(h);
      if (std::string(topic) != "t") return std::uint64_t{0};
      std::uint64_t id = t->next++;
      t->subs[id] = {fn, ctx};
      fn(ctx, topic, t->doc.data(), t->doc.size());
      return id;
    };
    api.unsubscribe = [](blade_host *h, std::uint64_t id) {
      self(h)->ended.push_back(id);
      self(h)->subs.erase(id);
    };
    api.report_counters = [](blade_host *h, const char *uid, const char *json, std::size_t n) {
      std::string text(json, n);
      if (!blade::sdk::parse_counters(text).ok()) return BLADE_STATUS_INVALID_ARGUMENT;
      self(h)->reports.emplace_back(uid, text);
      return BLADE_STATUS_OK;
    };
  }
  static TopicHost *self(blade_host *h) { return reinterpret_cast<TopicHost *>(h); }
  blade_host *host() { return reinterpret_cast<blade_host *>(this); }
  void publish(std::string d) {
    doc = std::move(d);
    for (auto &[id, sub] : subs) sub.first(sub.second, "t", doc.data(), doc.size());
  }
};

}  // namespace

TEST_CASE("Host::subscribe and report_counters on a 1.4 host: NotSupported and false") {
  TopicHost h(4);
  Host host(&h.api, h.host());
  try {
    (void)host.subscribe("t", [](std::string_view) {});
    FAIL("subscribe on a 1.4 host did not throw");
  } catch (const blade::sdk::NotSupported &e) {
    CHECK(e.status() == BLADE_STATUS_NOT_SUPPORTED);
    CHECK(std::string(e.what()) ==
          "following topic 't' needs a host with plugin ABI 1.5; this host has ABI 1.4");
  }
  CHECK(h.subs.empty());  // the pointer past struct_size was never called
  CHECK_FALSE(host.report_counters("0123456789abcdef", R"({"series":[]})"));
  CHECK(h.reports.empty());
}

TEST_CASE("Host::subscribe on a 1.5 host: current document first, then each change, until reset") {
  TopicHost h(5);
  Host host(&h.api, h.host());
  std::vector<std::string> seen;
  blade::sdk::TopicSubscription sub =
      host.subscribe("t", [&](std::string_view json) { seen.emplace_back(json); });
  REQUIRE(static_cast<bool>(sub));
  CHECK(sub.id() == 7);
  CHECK(seen == std::vector<std::string>{R"({"v":0})"});
  h.publish(R"({"v":1})");
  // Moved: the function object stays where the host's ctx points.
  blade::sdk::TopicSubscription moved = std::move(sub);
  CHECK_FALSE(static_cast<bool>(sub));
  h.publish(R"({"v":2})");
  CHECK(seen == std::vector<std::string>{R"({"v":0})", R"({"v":1})", R"({"v":2})"});
  sub.reset();  // the moved-from one ends nothing
  CHECK(h.ended.empty());
  moved = blade::sdk::TopicSubscription();  // assignment ends the old one
  CHECK(h.ended == std::vector<std::uint64_t>{7});
  h.publish(R"({"v":3})");
  CHECK(seen.size() == 3);

  {
    auto scoped = host.subscribe("t", [&](std::string_view json) { seen.emplace_back(json); });
    CHECK(seen.back() == R"({"v":3})");
  }
  CHECK(h.ended == std::vector<std::uint64_t>{7, 8});  // the destructor unsubscribed
  CHECK(h.subs.empty());
}

TEST_CASE("Host::subscribe: an unknown topic is NotSupported; fn's exceptions stay in the plugin") {
  TopicHost h(5);
  Host host(&h.api, h.host());
  CHECK_THROWS_WITH_AS((void)host.subscribe("other", [](std::string_view) {}),
                       "this host does not publish topic 'other'", blade::sdk::NotSupported);
  int calls = 0;
  auto sub = host.subscribe("t", [&](std::string_view json) {
    ++calls;
    if (json.find("bad") != std::string_view::npos) throw std::runtime_error("cannot parse");
  });
  h.publish(R"({"bad":true})");  // would terminate if it crossed the C boundary
  h.publish(R"({"v":4})");
  CHECK(calls == 3);
  REQUIRE(h.logs.size() == 1);
  CHECK(h.logs[0] == "topic t: the subscriber threw, the document was not taken: cannot parse");
}

TEST_CASE("Host::report_counters hands uid and text to the host; false when refused") {
  TopicHost h(5);
  Host host(&h.api, h.host());
  std::vector<blade::sdk::CounterSeries> series(1);
  series[0].labels = {{"rule", "checkout/0"}};
  series[0].counters = {{"total_requests", 12}, {"errors", 0}};
  const std::string json = blade::sdk::counters_json(series);
  CHECK(json ==
        R"({"series":[{"labels":{"rule":"checkout/0"},"counters":{"total_requests":12,"errors":0}}]})");
  CHECK(host.report_counters("0123456789abcdef", json));
  CHECK_FALSE(host.report_counters("0123456789abcdef", R"({"series":[{"counters":{"Bad":1}}]})"));
  REQUIRE(h.reports.size() == 1);
  CHECK(h.reports[0].first == "0123456789abcdef");
  CHECK(h.reports[0].second == json);
}

TEST_CASE("parse_counters: the rules of a counters report, each refusal naming its field") {
  using blade::sdk::parse_counters;
  auto error = [](std::string_view json) { return parse_counters(json).error; };

  auto good = parse_counters(
      R"( {"series": [{"labels": {"rule": "a\"b\\c\n\u00e9\ud83d\ude00"}, "counters": {"total_requests": 18446744073709551615, "errors": 0}},
                      {"counters": {}}]} )");
  REQUIRE(good.ok());
  REQUIRE(good.series.size() == 2);
  CHECK(good.series[0].labels[0].second == "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(good.series[0].counters[0].second == UINT64_MAX);
  CHECK(good.series[1].labels.empty());
  CHECK(parse_counters(R"({"series":[]})").ok());

  CHECK(error("[]") == "the report: not a JSON object");
  CHECK(error("{}") == "series: missing");
  CHECK(error(R"({"series":[],"x":1})") == R"(x: unknown field (only "series"))");
  CHECK(error(R"({"series":[]} x)") == "the report: text after the JSON object");
  CHECK(error(R"({"series":{}})") == "series: not an array");
  CHECK(error(R"({"series":[{"labels":{}}]})") == "series[0].counters: missing");
  CHECK(error(R"({"series":[{"counters":{},"more":1}]})") ==
        R"(series[0].more: unknown field (only "labels" and "counters"))");
  CHECK(error(R"({"series":[{"counters":{"Errors":1}}]})") ==
        "series[0].counters.Errors: not a valid name ([a-z_][a-z0-9_]*, at most 64 characters)");
  CHECK(error(R"({"series":[{"counters":{"9x":1}}]})").find("not a valid name") != std::string::npos);
  CHECK(error(R"({"series":[{"counters":{"e":-1}}]})") == "series[0].counters.e: not a non-negative integer");
  CHECK(error(R"({"series":[{"counters":{"e":1.5}}]})") == "series[0].counters.e: not a non-negative integer");
  CHECK(error(R"({"series":[{"counters":{"e":1e3}}]})") == "series[0].counters.e: not a non-negative integer");
  CHECK(error(R"({"series":[{"counters":{"e":01}}]})") == "series[0].counters.e: not a non-negative integer");
  CHECK(error(R"({"series":[{"counters":{"e":"1"}}]})") == "series[0].counters.e: not a non-negative integer");
  CHECK(error(R"({"series":[{"counters":{"e":18446744073709551616}}]})") ==
        "series[0].counters.e: larger than 2^64-1");
  CHECK(error(R"({"series":[{"counters":{"e":1,"e":2}}]})") == "series[0].counters.e: appears twice");
  CHECK(error(R"({"series":[{"labels":{"rule":1},"counters":{}}]})") ==
        "series[0].labels.rule: not a string");
  CHECK(error(R"({"series":[{"labels":{"uid":"x"},"counters":{}}]})") ==
        "series[0].labels.uid: reserved: the host adds this label");
  CHECK(error(R"({"series":[{"labels":{"__name":"x"},"counters":{}}]})") ==
        R"(series[0].labels.__name: reserved: names starting "__")");
  CHECK(error("{\"series\":[{\"labels\":{\"r\":\"\xff\"},\"counters\":{}}]}") ==
        "series[0].labels.r: a string that is not valid UTF-8");
  CHECK(error(R"({"series":[{"labels":{"r":"\ud800"},"counters":{}}]})") ==
        "series[0].labels.r: a high surrogate escape without its low half");
  CHECK(error(R"({"series":[{"labels":{"a":"1","b":"2"},"counters":{}},{"labels":{"b":"2","a":"1"},"counters":{}}]})") ==
        "series[1]: the same labels as series[0]");
  CHECK(error(R"({"series":[{"counters":{"e":1}})") == "series: malformed JSON (',' or ']' expected)");

  std::string many = R"({"series":[)";
  for (int i = 0; i < 65; ++i)
    many += (i ? "," : "") + std::string(R"({"labels":{"n":")") + std::to_string(i) + R"("},"counters":{}})";
  CHECK(error(many + "]}") == "series: more than 64 series");
  CHECK(error(std::string(blade::sdk::kMaxCountersBytes + 1, ' ')) ==
        "the report is 65537 bytes, more than 65536");
}
