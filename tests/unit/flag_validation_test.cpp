#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "blade/core/model/error.hpp"
#include "blade/core/spec/flag_validation.hpp"
#include "blade/core/spec/spec.hpp"

using blade::ErrorCode;
using blade::FieldError;
using blade::FlagSpec;
using blade::FlagType;
using blade::FlagValues;
using nlohmann::json;

namespace {

FlagSpec flag(std::string name, FlagType type = FlagType::String) {
  FlagSpec spec;
  spec.name = std::move(name);
  spec.type = type;
  return spec;
}

FlagSpec ranged(std::string name, FlagType type, std::optional<double> min,
                std::optional<double> max) {
  FlagSpec spec = flag(std::move(name), type);
  spec.min = min;
  spec.max = max;
  return spec;
}

// A target "t" with one action "a" holding `flags`.
struct Catalog {
  blade::TargetSpec target;
  blade::ActionSpec action;
};

Catalog catalog(std::vector<FlagSpec> flags) {
  Catalog result;
  result.target.target = "t";
  result.action.name = "a";
  result.action.flags = std::move(flags);
  return result;
}

FlagValues validate(const Catalog &spec, const FlagValues &input) {
  return blade::validate_flags(spec.target, spec.action, input);
}

blade::Error validation_error(const Catalog &spec, const FlagValues &input) {
  try {
    validate(spec, input);
  } catch (const blade::Error &error) {
    CHECK(error.code() == ErrorCode::InvalidArgument);
    return error;
  }
  FAIL("the flags were accepted");
  return blade::Error(ErrorCode::Internal, "unreachable");
}

// The normalised value of `value` for a lone flag `spec`.
std::string accepted(const FlagSpec &spec, const std::string &value) {
  const FlagValues output = validate(catalog({spec}), {{spec.name, value}});
  REQUIRE(output.count(spec.name) == 1);
  return output.at(spec.name);
}

// The description of the problem with `value` for a lone flag `spec`.
std::string rejected(const FlagSpec &spec, const std::string &value) {
  const blade::Error error = validation_error(catalog({spec}), {{spec.name, value}});
  REQUIRE(error.details().size() == 1);
  CHECK(error.details()[0].field == "flags." + spec.name);
  return error.details()[0].description;
}

void check_rejects(const FlagSpec &spec, std::initializer_list<std::string_view> values) {
  for (const std::string_view value : values) {
    CAPTURE(value);
    rejected(spec, std::string(value));
  }
}

blade::Error json_error(const json &flags) {
  try {
    blade::flags_from_json(flags);
  } catch (const blade::Error &error) {
    CHECK(error.code() == ErrorCode::InvalidArgument);
    return error;
  }
  FAIL("the JSON was accepted: ", flags.dump());
  return blade::Error(ErrorCode::Internal, "unreachable");
}

}  // namespace

TEST_CASE("flags_from_json: scalars become text") {
  const FlagValues values = blade::flags_from_json(json::parse(R"({
    "name": "eth0", "empty": "", "count": 60, "negative": -3, "big": 18446744073709551615,
    "half": 0.5, "whole": 60.0, "tiny": 1e-7, "on": true, "off": false
  })"));
  CHECK(values == FlagValues{{"name", "eth0"},
                             {"empty", ""},
                             {"count", "60"},
                             {"negative", "-3"},
                             {"big", "18446744073709551615"},
                             {"half", "0.5"},
                             {"whole", "60"},
                             {"tiny", "1e-07"},
                             {"on", "true"},
                             {"off", "false"}});
  CHECK(blade::flags_from_json(json::object()).empty());
}

TEST_CASE("flags_from_json: floats print in their shortest round-trip form") {
  for (const double value : {0.1, 1.0 / 3.0, 123.456, -2.5e-300, 1e300}) {
    CAPTURE(value);
    const std::string text = blade::flags_from_json(json{{"x", value}}).at("x");
    CHECK(std::stod(text) == value);
  }
  CHECK(blade::flags_from_json(json{{"x", 1.0 / 3.0}}).at("x") == "0.3333333333333333");
}

TEST_CASE("flags_from_json: non-scalars are refused, naming each flag") {
  const blade::Error error =
      json_error(json::parse(R"({"a": null, "b": [1], "c": {"d": 1}, "ok": "x"})"));
  CHECK(error.details() == std::vector<FieldError>{
                               {"flags.a", "must be a string, number or boolean"},
                               {"flags.b", "must be a string, number or boolean"},
                               {"flags.c", "must be a string, number or boolean"},
                           });
  CHECK(std::string(error.what()) == "flags.a: must be a string, number or boolean (and 2 more)");
  CHECK(json_error(json{{"nan", std::nan("")}}).details().at(0).field == "flags.nan");
}

TEST_CASE("flags_from_json: the flags must be an object") {
  for (const json &bad : {json(nullptr), json::array({"a"}), json("x"), json(1), json(true)}) {
    CAPTURE(bad.dump());
    const blade::Error error = json_error(bad);
    REQUIRE(error.details().size() == 1);
    CHECK(error.details()[0].field == "flags");
  }
}

TEST_CASE("validate_flags: unknown flags") {
  const Catalog spec = catalog({flag("known")});
  const blade::Error error = validation_error(spec, {{"known", "x"}, {"unknwon", "y"}});
  CHECK(error.details() == std::vector<FieldError>{{"flags.unknwon", "unknown flag for t a"}});
  CHECK(std::string(error.what()) == "flags.unknwon: unknown flag for t a");
}

TEST_CASE("validate_flags: required flags") {
  FlagSpec interface = flag("interface");
  interface.required = true;
  const Catalog spec = catalog({interface, flag("other")});
  CHECK(validation_error(spec, {}).details() ==
        std::vector<FieldError>{{"flags.interface", "required"}});
  // An empty value is as good as none for a required flag.
  CHECK(validation_error(spec, {{"interface", ""}}).details() ==
        std::vector<FieldError>{{"flags.interface", "required"}});
  CHECK(validate(spec, {{"interface", "eth0"}}) == FlagValues{{"interface", "eth0"}});
}

TEST_CASE("validate_flags: defaults apply only to absent flags") {
  FlagSpec percent = ranged("cpu-percent", FlagType::Int, 0, 100);
  percent.default_value = "100";
  FlagSpec mode = flag("mode", FlagType::Enum);
  mode.values = {"ram", "cache"};
  mode.default_value = "ram";
  const Catalog spec = catalog({percent, mode, flag("cpu-list")});
  CHECK(validate(spec, {}) == FlagValues{{"cpu-percent", "100"}, {"mode", "ram"}});
  CHECK(validate(spec, {{"cpu-percent", "60"}}) ==
        FlagValues{{"cpu-percent", "60"}, {"mode", "ram"}});
  CHECK(validate(spec, {{"cpu-list", "0-3"}, {"mode", "cache"}}) ==
        FlagValues{{"cpu-percent", "100"}, {"mode", "cache"}, {"cpu-list", "0-3"}});
}

TEST_CASE("validate_flags: booleans and noArgs switches") {
  FlagSpec force = flag("force", FlagType::Bool);
  force.no_args = true;
  for (const std::string_view yes : {"", "true", "1", "yes", "TRUE", "Yes"}) {
    CAPTURE(yes);
    CHECK(accepted(force, std::string(yes)) == "true");
  }
  for (const std::string_view no : {"false", "0", "no", "False", "NO"}) {
    CAPTURE(no);
    CHECK(accepted(force, std::string(no)) == "false");
  }
  CHECK(rejected(force, "maybe") == "must be true or false, got \"maybe\"");
  check_rejects(force, {"2", "on", "t", " true", "truee"});
  CHECK(accepted(flag("plain", FlagType::Bool), "no") == "false");
  CHECK(validate(catalog({force}), {}).empty());
}

TEST_CASE("validate_flags: integers") {
  const FlagSpec count = flag("count", FlagType::Int);
  CHECK(accepted(count, "60") == "60");
  CHECK(accepted(count, "-3") == "-3");
  CHECK(accepted(count, "+5") == "5");
  CHECK(accepted(count, "007") == "7");
  CHECK(accepted(count, "9223372036854775807") == "9223372036854775807");
  CHECK(accepted(count, "-9223372036854775808") == "-9223372036854775808");
  check_rejects(count, {"", "abc", "1.5", "1e3", " 5", "5 ", "+-5", "--5", "-", "0x10", "5a",
                        "9223372036854775808", "-9223372036854775809"});
  CHECK(rejected(count, "abc") == "must be a 64-bit integer, got \"abc\"");
}

TEST_CASE("validate_flags: integer ranges are inclusive and stated") {
  const FlagSpec percent = ranged("cpu-percent", FlagType::Int, 0, 100);
  CHECK(accepted(percent, "0") == "0");
  CHECK(accepted(percent, "100") == "100");
  CHECK(rejected(percent, "120") == "must be between 0 and 100, got 120");
  CHECK(rejected(percent, "-1") == "must be between 0 and 100, got -1");
  CHECK(rejected(ranged("n", FlagType::Int, 1, std::nullopt), "0") == "must be at least 1, got 0");
  CHECK(rejected(ranged("n", FlagType::Int, std::nullopt, 10), "11") ==
        "must be at most 10, got 11");
}

TEST_CASE("validate_flags: floats") {
  const FlagSpec ratio = ranged("ratio", FlagType::Float, 0, 1);
  CHECK(accepted(ratio, "0.5") == "0.5");
  CHECK(accepted(ratio, "1") == "1");
  CHECK(accepted(ratio, ".25") == ".25");  // kept as given
  CHECK(accepted(ratio, "+0.5") == "+0.5");
  CHECK(accepted(ratio, "5e-1") == "5e-1");
  CHECK(rejected(ratio, "1.5") == "must be between 0 and 1, got 1.5");
  check_rejects(ratio, {"", "abc", "nan", "inf", "-inf", "1e999", "0x1p-1", " 0.5", "0.5 ", "1,5",
                        "+-1", "0.5.1"});
  CHECK(rejected(ratio, "abc") == "must be a number, got \"abc\"");
}

TEST_CASE("validate_flags: durations, bounded in seconds") {
  const FlagSpec climb = ranged("climb-time", FlagType::Duration, 0, 600);
  CHECK(accepted(climb, "60") == "60");
  CHECK(accepted(climb, "10m") == "10m");  // kept as given
  CHECK(accepted(climb, "1m30s") == "1m30s");
  CHECK(accepted(climb, "600") == "600");
  CHECK(rejected(climb, "15m") == "must be between 0 and 600 seconds, got \"15m\"");
  CHECK(rejected(climb, "600.5s").find("600 seconds") != std::string::npos);
  CHECK(rejected(climb, "-1s").find("must be between") == 0);
  check_rejects(climb, {"", "1.5", "5x", "m", "1h30"});
  CHECK(rejected(ranged("t", FlagType::Duration, 0.5, std::nullopt), "100ms") ==
        "must be at least 0.5 seconds, got \"100ms\"");
}

TEST_CASE("validate_flags: IP addresses") {
  const FlagSpec ip = flag("destination-ip", FlagType::Ip);
  for (const std::string_view good : {"10.0.0.1", "0.0.0.0", "::1", "fe80::1", "::ffff:1.2.3.4"}) {
    CAPTURE(good);
    CHECK(accepted(ip, std::string(good)) == good);
  }
  check_rejects(ip, {"", "256.1.1.1", "1.2.3", "1.2.3.4/8", "example.com", " 1.2.3.4", "::1%lo",
                     "1.2.3.4\n"});
}

TEST_CASE("validate_flags: CIDRs") {
  const FlagSpec cidr = flag("net", FlagType::Cidr);
  for (const std::string_view good :
       {"10.0.0.0/8", "10.0.0.1", "0.0.0.0/0", "1.2.3.4/32", "::/0", "fe80::/64", "::1/128"}) {
    CAPTURE(good);
    CHECK(accepted(cidr, std::string(good)) == good);
  }
  check_rejects(cidr, {"", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "::/129",
                       "x/8", "/8", "10.0.0.0/8/8", "10.0.0.0/ 8", "10.0.0.0/0008"});
  CHECK(rejected(cidr, "10.0.0.0/33") ==
        "prefix length must be between 0 and 32, got "
        "\"10.0.0.0/33\"");
}

TEST_CASE("validate_flags: ports") {
  const FlagSpec port = flag("port", FlagType::Port);
  CHECK(accepted(port, "1") == "1");
  CHECK(accepted(port, "65535") == "65535");
  CHECK(accepted(port, "080") == "80");
  check_rejects(port, {"", "0", "65536", "-1", "+80", "http", "80 ", "1e3", "100000"});
  CHECK(rejected(port, "0") == "must be a port between 1 and 65535, got \"0\"");
  const FlagSpec high = ranged("port", FlagType::Port, 1024, std::nullopt);
  CHECK(accepted(high, "8080") == "8080");
  CHECK(rejected(high, "80") == "must be at least 1024, got 80");
}

TEST_CASE("validate_flags: port ranges") {
  const FlagSpec range = flag("local-port", FlagType::PortRange);
  CHECK(accepted(range, "80") == "80");
  CHECK(accepted(range, "1000-2000") == "1000-2000");
  CHECK(accepted(range, "1-65535") == "1-65535");
  CHECK(accepted(range, "8080-8080") == "8080-8080");
  CHECK(accepted(range, "0080-090") == "80-90");
  check_rejects(range, {"", "-", "1000-", "-5", "0-5", "5-65536", "1-2-3", "a-b", "1000 - 2000"});
  CHECK(rejected(range, "2000-1000") == "range start must not exceed its end, got \"2000-1000\"");
}

TEST_CASE("validate_flags: paths") {
  const FlagSpec path = flag("path", FlagType::Path);
  CHECK(accepted(path, "/") == "/");
  CHECK(accepted(path, "/tmp/with space/x") == "/tmp/with space/x");
  CHECK(rejected(path, "") == "must not be empty");
  CHECK(rejected(path, "tmp/x") == "must be an absolute path, got \"tmp/x\"");
  check_rejects(path, {"./x", "~/x", "/a\nb", "/a\tb", std::string_view("/a\0b", 4)});
}

TEST_CASE("validate_flags: enums") {
  FlagSpec mode = flag("mode", FlagType::Enum);
  mode.values = {"ram", "cache"};
  CHECK(accepted(mode, "ram") == "ram");
  CHECK(accepted(mode, "cache") == "cache");
  CHECK(rejected(mode, "RAM") == "must be one of ram, cache; got \"RAM\"");
  check_rejects(mode, {"", "ram ", "disk"});
}

TEST_CASE("validate_flags: strings refuse control characters") {
  const FlagSpec text = flag("content");
  CHECK(accepted(text, "") == "");
  CHECK(accepted(text, "hello world") == "hello world");
  CHECK(accepted(text, "tab\tand\nnewline") == "tab\tand\nnewline");
  CHECK(accepted(text, "caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(accepted(text, "$(rm -rf /); `x` | y") == "$(rm -rf /); `x` | y");
  CHECK(rejected(text, std::string("a\0b", 3)) == "must not contain NUL or control characters");
  check_rejects(text, {"\r", "\x1b[31m", "a\x7f", "\x01"});
}

TEST_CASE("validate_flags: lists") {
  FlagSpec cpus = flag("cpu-list", FlagType::Int);
  cpus.list = true;
  CHECK(accepted(cpus, "1") == "1");
  CHECK(accepted(cpus, "0, 1 ,+2") == "0,1,2");
  CHECK(rejected(cpus, "1,,2") == "element 2 is empty");
  CHECK(rejected(cpus, "1,") == "element 2 is empty");
  CHECK(rejected(cpus, "") == "element 1 is empty");
  CHECK(rejected(cpus, "x,2,y") ==
        "element 1: must be a 64-bit integer, got \"x\"; element 3: must be a 64-bit integer, "
        "got \"y\"");

  FlagSpec names = flag("process");
  names.list = true;
  CHECK(accepted(names, " nginx ,java") == "nginx,java");

  FlagSpec ports = flag("local-port", FlagType::PortRange);
  ports.list = true;
  CHECK(accepted(ports, "80,8000-8080") == "80,8000-8080");
  CHECK(rejected(ports, "80,0") ==
        "element 2: must be a port or a port range like 8000-8080, got "
        "\"0\"");

  FlagSpec protocols = flag("protocol", FlagType::Enum);
  protocols.values = {"tcp", "udp"};
  protocols.list = true;
  CHECK(accepted(protocols, "tcp, udp") == "tcp,udp");
  CHECK(rejected(protocols, "tcp,icmp").rfind("element 2: must be one of tcp, udp", 0) == 0);

  FlagSpec bounded = ranged("n", FlagType::Int, 0, 3);
  bounded.list = true;
  CHECK(rejected(bounded, "1,4") == "element 2: must be between 0 and 3, got 4");
}

TEST_CASE("validate_flags: echoed values are shortened and escaped") {
  const FlagSpec count = flag("count", FlagType::Int);
  const std::string description = rejected(count, std::string(1000, '9') + "x");
  CHECK(description.size() < 120);
  CHECK(description.find("...") != std::string::npos);
  CHECK(rejected(count, "1\x1b") == "must be a 64-bit integer, got \"1\\x1b\"");
  CHECK(rejected(count, "\"q\"") == "must be a 64-bit integer, got \"\\\"q\\\"\"");
}

TEST_CASE("validate_flags: every problem is reported at once") {
  FlagSpec required = flag("interface");
  required.required = true;
  FlagSpec percent = ranged("percent", FlagType::Int, 0, 100);
  const Catalog spec = catalog({required, percent, flag("port", FlagType::Port)});
  const blade::Error error =
      validation_error(spec, {{"percent", "120"}, {"port", "x"}, {"zzz", "1"}, {"aaa", "1"}});
  CHECK(error.details() == std::vector<FieldError>{
                               {"flags.aaa", "unknown flag for t a"},
                               {"flags.zzz", "unknown flag for t a"},
                               {"flags.interface", "required"},
                               {"flags.percent", "must be between 0 and 100, got 120"},
                               {"flags.port", "must be a port between 1 and 65535, got \"x\""},
                           });
  CHECK(std::string(error.what()) == "flags.aaa: unknown flag for t a (and 4 more)");
}

TEST_CASE("validate_flags: target flags and matchers count as the action's flags") {
  Catalog spec = catalog({flag("time", FlagType::Int)});
  FlagSpec interface = flag("interface");
  interface.required = true;
  spec.target.flags = {interface};
  spec.action.matchers = {flag("local-port", FlagType::PortRange)};
  CHECK(validate(spec, {{"interface", "eth0"}, {"local-port", "80"}, {"time", "100"}}) ==
        FlagValues{{"interface", "eth0"}, {"local-port", "80"}, {"time", "100"}});
  CHECK(validation_error(spec, {{"time", "100"}}).details() ==
        std::vector<FieldError>{{"flags.interface", "required"}});
}

TEST_CASE("validate_flags: an empty spec and no input") {
  CHECK(validate(catalog({}), {}).empty());
}

TEST_CASE("end to end: a realistic multi-target spec") {
  const blade::PluginSpec spec = blade::parse_spec_yaml(R"(version: v1
kind: plugin
items:
- target: cpu
  shortDesc: Cpu experiment
  longDesc: Cpu experiment, for example full load
  scope: host
  actions:
  - action: fullload
    aliases: [fl, load]
    shortDesc: cpu load
    longDesc: Burn cpu until destroyed
    matchers: []
    flags:
    - name: cpu-percent
      desc: percent of burn CPU (0-100)
      type: int
      min: 0
      max: 100
      default: "100"
    - name: cpu-count
      desc: number of cpus to burn
      type: int
      min: 1
    - name: cpu-list
      desc: cpus to burn, e.g. 0,3
      type: int
      list: true
      min: 0
    - name: climb-time
      desc: time to reach the percent
      type: duration
      min: 0
      max: 600
    - name: cgroup-root
      type: path
      default: /sys/fs/cgroup
    - name: timeout
      desc: set timeout for experiment in seconds
      noArgs: false
      required: false
      requiredWhenDestroyed: false
    - name: async
      desc: whether to create asynchronously, default is false
      noArgs: true
    - name: endpoint
      desc: the create result reporting address
    example: |
      blade create cpu load --cpu-percent 60
    programs: [chaos_burncpu]
    categories: [system_cpu]
    actionProcessHang: true
- target: mem
  shortDesc: Mem experiment
  actions:
  - action: load
    flags:
    - name: mem-percent
      type: int
      min: 0
      max: 100
      default: 100
    - name: mode
      desc: burn memory mode, cache or ram
      type: enum
      values: [ram, cache]
      default: cache
    - name: rate
      type: int
      min: 1
      default: 100
    - name: avoid-being-killed
      noArgs: true
    actionProcessHang: true
)");
  REQUIRE(spec.items.size() == 2);
  const blade::TargetSpec &cpu = spec.items[0];
  const blade::ActionSpec &fullload = cpu.actions.at(0);
  CHECK(fullload.aliases == std::vector<std::string>{"fl", "load"});
  CHECK(fullload.process_hang);
  REQUIRE(fullload.flags.size() == 5);  // timeout, async, endpoint dropped

  // The client sends JSON; the core turns it into text and validates it.
  const FlagValues cpu_flags = blade::validate_flags(
      cpu, fullload, blade::flags_from_json(json::parse(R"({"cpu-percent": 60, "cpu-list": "0, 3",
                                             "climb-time": "1m"})")));
  CHECK(cpu_flags == FlagValues{{"cpu-percent", "60"},
                                {"cpu-list", "0,3"},
                                {"climb-time", "1m"},
                                {"cgroup-root", "/sys/fs/cgroup"}});
  CHECK(blade::validate_flags(cpu, fullload, {}) ==
        FlagValues{{"cpu-percent", "100"}, {"cgroup-root", "/sys/fs/cgroup"}});

  try {
    blade::validate_flags(cpu, fullload,
                          blade::flags_from_json(json::parse(R"({"cpu-percent": 120, "cpu-count": 0,
                                               "climb-time": "15m", "timeout": 60})")));
    FAIL("accepted bad cpu flags");
  } catch (const blade::Error &error) {
    CHECK(error.details() ==
          std::vector<FieldError>{
              {"flags.timeout", "unknown flag for cpu fullload"},
              {"flags.cpu-percent", "must be between 0 and 100, got 120"},
              {"flags.cpu-count", "must be at least 1, got 0"},
              {"flags.climb-time", "must be between 0 and 600 seconds, got \"15m\""},
          });
  }

  const blade::TargetSpec &mem = spec.items[1];
  const blade::ActionSpec &load = mem.actions.at(0);
  CHECK(blade::validate_flags(mem, load, {{"mode", "ram"}, {"avoid-being-killed", ""}}) ==
        FlagValues{{"mem-percent", "100"},
                   {"mode", "ram"},
                   {"rate", "100"},
                   {"avoid-being-killed", "true"}});
  try {
    blade::validate_flags(mem, load, {{"mode", "disk"}});
    FAIL("accepted mode disk");
  } catch (const blade::Error &error) {
    CHECK(error.details() ==
          std::vector<FieldError>{{"flags.mode", "must be one of ram, cache; got \"disk\""}});
  }
}
