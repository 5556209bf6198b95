#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

#include "blade/core/model/error.hpp"
#include "blade/core/spec/spec.hpp"

using blade::ErrorCode;
using blade::FieldError;
using blade::FlagType;
using blade::parse_spec_yaml;
using blade::PluginSpec;

namespace {

// The spec error for `yaml`; fails the test when it parses.
blade::Error spec_error(std::string_view yaml) {
  try {
    parse_spec_yaml(yaml);
  } catch (const blade::Error &error) {
    CHECK(error.code() == ErrorCode::InvalidArgument);
    return error;
  }
  FAIL("the spec was accepted: ", yaml);
  return blade::Error(ErrorCode::Internal, "unreachable");
}

std::vector<std::string> fields(const blade::Error &error) {
  std::vector<std::string> names;
  for (const FieldError &detail : error.details())
    names.push_back(detail.field);
  return names;
}

std::string description_of(const blade::Error &error, std::string_view field) {
  for (const FieldError &detail : error.details()) {
    if (detail.field == field) return detail.description;
  }
  return "<no detail for " + std::string(field) + ">";
}

// Asserts the spec fails with exactly one problem, at `field`.
void check_only_problem(std::string_view yaml, std::string_view field) {
  const blade::Error error = spec_error(yaml);
  CAPTURE(yaml);
  CHECK(fields(error) == std::vector<std::string>{std::string(field)});
  CHECK(std::string(error.what()) == std::string(field) + ": " + description_of(error, field));
}

// One target "cpu" with one action "load" whose flags are given in flow
// style, so each test states just the flags it is about.
std::string with_flags(std::string_view flags) {
  return "version: v1\nkind: plugin\nitems:\n- target: cpu\n  actions:\n  - action: load\n"
         "    flags: [" +
         std::string(flags) + "]\n";
}

// The same, with the flag's keys given inside one flow mapping.
std::string with_flag(std::string_view keys) {
  return with_flags("{" + std::string(keys) + "}");
}

constexpr std::string_view kFirstFlag = "items[0].actions[0].flags[0]";

std::string flag_field(std::string_view key) {
  return std::string(kFirstFlag) + "." + std::string(key);
}

// A copy, so that it outlives the temporary spec it came from.
blade::FlagSpec only_flag(const PluginSpec &spec) {
  REQUIRE(spec.items.size() == 1);
  REQUIRE(spec.items[0].actions.size() == 1);
  REQUIRE(spec.items[0].actions[0].flags.size() == 1);
  return spec.items[0].actions[0].flags[0];
}

constexpr std::string_view kMinimal = R"(version: v1
kind: plugin
items:
- target: cpu
  actions:
  - action: fullload
)";

}  // namespace

TEST_CASE("spec: a minimal spec parses with defaults") {
  const PluginSpec spec = parse_spec_yaml(kMinimal);
  CHECK(spec.version == "v1");
  CHECK(spec.kind == "plugin");
  REQUIRE(spec.items.size() == 1);
  const blade::TargetSpec &target = spec.items[0];
  CHECK(target.target == "cpu");
  CHECK(target.scope == "host");
  CHECK(target.flags.empty());
  REQUIRE(target.actions.size() == 1);
  CHECK(target.actions[0].name == "fullload");
  CHECK(target.actions[0].aliases.empty());
  CHECK_FALSE(target.actions[0].process_hang);
}

TEST_CASE("spec: every documented key is read") {
  const PluginSpec spec = parse_spec_yaml(R"(version: v1
kind: plugin
items:
- target: network
  shortDesc: Network experiment
  longDesc: Network experiments on an interface
  scope: docker
  flags:
  - name: interface
    desc: the device
    required: true
    requiredWhenDestroyed: true
  actions:
  - action: delay
    aliases: [d]
    shortDesc: delay packets
    longDesc: delay egress packets
    matchers:
    - name: local-port
      type: port-range
      list: true
    flags:
    - name: time
      desc: delay in ms
      type: int
      min: 0
      max: 60000.5
      default: 100
    - name: force
      noArgs: true
    - name: protocol
      type: enum
      values: [tcp, udp, icmp]
    example: |
      blade create network delay --interface eth0 --time 3000
    programs: [chaos_os]
    categories: [system_network]
    actionProcessHang: yes
)");
  const blade::TargetSpec &target = spec.items.at(0);
  CHECK(target.target == "network");
  CHECK(target.short_desc == "Network experiment");
  CHECK(target.long_desc == "Network experiments on an interface");
  CHECK(target.scope == "docker");
  REQUIRE(target.flags.size() == 1);
  CHECK(target.flags[0].name == "interface");
  CHECK(target.flags[0].desc == "the device");
  CHECK(target.flags[0].required);
  CHECK(target.flags[0].required_when_destroyed);
  CHECK(target.flags[0].type == FlagType::String);

  const blade::ActionSpec &action = target.actions.at(0);
  CHECK(action.name == "delay");
  CHECK(action.aliases == std::vector<std::string>{"d"});
  CHECK(action.short_desc == "delay packets");
  CHECK(action.long_desc == "delay egress packets");
  CHECK(action.example == "blade create network delay --interface eth0 --time 3000\n");
  CHECK(action.programs == std::vector<std::string>{"chaos_os"});
  CHECK(action.categories == std::vector<std::string>{"system_network"});
  CHECK(action.process_hang);

  REQUIRE(action.matchers.size() == 1);
  CHECK(action.matchers[0].type == FlagType::PortRange);
  CHECK(action.matchers[0].list);

  REQUIRE(action.flags.size() == 3);
  const blade::FlagSpec &time = action.flags[0];
  CHECK(time.type == FlagType::Int);
  CHECK(time.min == 0.0);
  CHECK(time.max == 60000.5);
  CHECK(time.default_value == "100");  // a YAML number becomes its text
  CHECK_FALSE(time.required);
  CHECK(action.flags[1].no_args);
  CHECK(action.flags[1].type == FlagType::Bool);
  CHECK(action.flags[2].type == FlagType::Enum);
  CHECK(action.flags[2].values == std::vector<std::string>{"tcp", "udp", "icmp"});
}

TEST_CASE("spec: ChaosBlade's prepare and subTargets are accepted and ignored") {
  const PluginSpec spec = parse_spec_yaml(R"(version: v1
kind: plugin
items:
- target: jvm
  prepare:
    type: jvm
    flags:
    - name: port
    required: true
  subTargets: [servlet, dubbo]
  actions:
  - action: delay
)");
  CHECK(spec.items.at(0).target == "jvm");
}

TEST_CASE("spec: empty text") {
  for (const std::string_view empty :
       {"", "   ", "\n\n", " \t\r\n", "# only a comment\n", "---\n"}) {
    CAPTURE(empty);
    const blade::Error error = spec_error(empty);
    CHECK(std::string(error.what()) == "spec YAML is empty");
  }
}

TEST_CASE("spec: YAML syntax errors carry yaml-cpp's position") {
  const blade::Error error = spec_error("version: v1\nkind: plugin\nitems: [a, b\n");
  const std::string message = error.what();
  CHECK(message.rfind("spec YAML: ", 0) == 0);
  CHECK(message.find("line ") != std::string::npos);
  CHECK(message.find("column ") != std::string::npos);

  for (const std::string_view bad :
       {"{version: v1\n", "version: v1\nkind: plugin\n- a\n", "a: *nope\n", "a: b: c\n"}) {
    CAPTURE(bad);
    CHECK(std::string(spec_error(bad).what()).rfind("spec YAML: line ", 0) == 0);
  }
  CHECK(std::string(spec_error("version: v1\nkind: plugin\nitems: [a, b\n").what()) ==
        "spec YAML: line 4, column 1: end of sequence flow not found");

  const blade::Error indent = spec_error("version: v1\n  kind: plugin\n kind: x\n");
  CHECK(std::string(indent.what()).rfind("spec YAML: line ", 0) == 0);
}

// yaml-cpp 0.7's LoadAll never returned on these (a token no rule consumes),
// growing memory until it ran out; found by fuzz/spec_yaml.cpp.
TEST_CASE("spec: a stray comma is a syntax error, not a hang") {
  for (const std::string_view bad : {",", ",,a", "- x\n,", "[a],"}) {
    CAPTURE(bad);
    CHECK(std::string(spec_error(bad).what()).rfind("spec YAML: line ", 0) == 0);
  }
  CHECK(std::string(spec_error(",\n" + std::string(kMinimal)).what()) ==
        "spec YAML: line 1, column 1: unexpected ','");
}

TEST_CASE("spec: more than one YAML document") {
  const blade::Error error = spec_error(std::string(kMinimal) + "---\n" + std::string(kMinimal));
  CHECK(std::string(error.what()).rfind("spec YAML: ", 0) == 0);
}

TEST_CASE("spec: the document must be a mapping") {
  for (const std::string_view yaml : {"- a\n- b\n", "just text\n", "42\n"}) {
    CAPTURE(yaml);
    const blade::Error error = spec_error(yaml);
    CHECK(std::string(error.what()).find("must be a mapping") != std::string::npos);
  }
}

TEST_CASE("spec: version and kind") {
  check_only_problem("kind: plugin\nitems: [{target: cpu, actions: [{action: a}]}]\n", "version");
  check_only_problem("version: v2\nkind: plugin\nitems: [{target: cpu, actions: [{action: a}]}]\n",
                     "version");
  check_only_problem("version: [v1]\nkind: plugin\nitems: [{target: c, actions: [{action: a}]}]\n",
                     "version");
  check_only_problem("version: v1\nitems: [{target: cpu, actions: [{action: a}]}]\n", "kind");
  check_only_problem("version: v1\nkind: plugins\nitems: [{target: cpu, actions: [{action: a}]}]\n",
                     "kind");
  const blade::Error error =
      spec_error("version: v2\nkind: plugin\nitems: [{target: cpu, actions: [{action: a}]}]\n");
  CHECK(std::string(error.what()) == "version: must be \"v1\", got \"v2\"");
}

TEST_CASE("spec: items must be a non-empty sequence of mappings") {
  check_only_problem("version: v1\nkind: plugin\n", "items");
  check_only_problem("version: v1\nkind: plugin\nitems: []\n", "items");
  check_only_problem("version: v1\nkind: plugin\nitems: cpu\n", "items");
  check_only_problem("version: v1\nkind: plugin\nitems: {target: cpu}\n", "items");
  check_only_problem("version: v1\nkind: plugin\nitems: [cpu]\n", "items[0]");
  CHECK(description_of(spec_error("version: v1\nkind: plugin\nitems: []\n"), "items") ==
        "must not be empty");
}

TEST_CASE("spec: unknown keys are refused at every level, naming the path") {
  check_only_problem(std::string(kMinimal) + "itmes: []\n", "itmes");
  check_only_problem(R"(version: v1
kind: plugin
items:
- target: cpu
  shortdesc: typo
  actions:
  - action: fullload
)",
                     "items[0].shortdesc");
  check_only_problem(R"(version: v1
kind: plugin
items:
- target: cpu
  actions:
  - action: fullload
    alias: [fl]
)",
                     "items[0].actions[0].alias");
  check_only_problem(with_flag("name: x, tpye: int"), flag_field("tpye"));
  check_only_problem(R"(version: v1
kind: plugin
items:
- target: cpu
  flags:
  - {name: x, defualt: 1}
  actions:
  - action: fullload
)",
                     "items[0].flags[0].defualt");
  CHECK(description_of(spec_error(with_flag("name: x, tpye: int")), flag_field("tpye")) ==
        "unknown key");
}

TEST_CASE("spec: prepare and subTargets are only ignored on targets") {
  check_only_problem(R"(version: v1
kind: plugin
items:
- target: cpu
  actions:
  - action: fullload
    subTargets: []
)",
                     "items[0].actions[0].subTargets");
}

TEST_CASE("spec: a key given twice") {
  check_only_problem(std::string(kMinimal) + "kind: plugin\n", "kind");
  check_only_problem(with_flag("name: x, type: int, type: float"), flag_field("type"));
  CHECK(description_of(spec_error(with_flag("name: x, desc: a, desc: b")), flag_field("desc")) ==
        "duplicate key");
}

TEST_CASE("spec: target names") {
  for (const std::string_view good : {"cpu", "k8s", "0day", "file-system", "my_target"}) {
    CAPTURE(good);
    const PluginSpec spec =
        parse_spec_yaml("version: v1\nkind: plugin\nitems: [{target: " + std::string(good) +
                        ", actions: [{action: a}]}]\n");
    CHECK(spec.items.at(0).target == good);
  }
  for (const std::string_view bad : {"CPU", "-cpu", "_cpu", "cpu load", "cpu.x", "\"\"", "[a]"}) {
    CAPTURE(bad);
    check_only_problem("version: v1\nkind: plugin\nitems: [{target: " + std::string(bad) +
                           ", actions: [{action: a}]}]\n",
                       "items[0].target");
  }
  check_only_problem("version: v1\nkind: plugin\nitems: [{actions: [{action: a}]}]\n",
                     "items[0].target");
  CHECK(description_of(spec_error("version: v1\nkind: plugin\nitems: [{actions: [{action: a}]}]\n"),
                       "items[0].target") == "required");
}

TEST_CASE("spec: scope") {
  check_only_problem(
      "version: v1\nkind: plugin\nitems: [{target: c, scope: Host, actions: [{action: a}]}]\n",
      "items[0].scope");
  const PluginSpec spec = parse_spec_yaml(
      "version: v1\nkind: plugin\nitems: [{target: c, scope: cri, actions: [{action: a}]}]\n");
  CHECK(spec.items.at(0).scope == "cri");
}

TEST_CASE("spec: a target needs actions") {
  check_only_problem("version: v1\nkind: plugin\nitems: [{target: cpu}]\n", "items[0].actions");
  check_only_problem("version: v1\nkind: plugin\nitems: [{target: cpu, actions: []}]\n",
                     "items[0].actions");
  check_only_problem("version: v1\nkind: plugin\nitems: [{target: cpu, actions: load}]\n",
                     "items[0].actions");
  check_only_problem("version: v1\nkind: plugin\nitems: [{target: cpu, actions: [load]}]\n",
                     "items[0].actions[0]");
}

TEST_CASE("spec: action names and aliases") {
  check_only_problem("version: v1\nkind: plugin\nitems: [{target: c, actions: [{action: Full}]}]\n",
                     "items[0].actions[0].action");
  check_only_problem("version: v1\nkind: plugin\nitems: [{target: c, actions: [{shortDesc: x}]}]\n",
                     "items[0].actions[0].action");
  check_only_problem(
      "version: v1\nkind: plugin\nitems: [{target: c, actions: [{action: a, aliases: [ok, "
      "No]}]}]\n",
      "items[0].actions[0].aliases[1]");
  check_only_problem(
      "version: v1\nkind: plugin\nitems: [{target: c, actions: [{action: a, aliases: fl}]}]\n",
      "items[0].actions[0].aliases");
  check_only_problem(
      "version: v1\nkind: plugin\nitems: [{target: c, actions: [{action: a, aliases: [[x]]}]}]\n",
      "items[0].actions[0].aliases[0]");
}

TEST_CASE("spec: text and list fields must have the right shape") {
  check_only_problem(
      "version: v1\nkind: plugin\nitems: [{target: c, shortDesc: [x], actions: [{action: a}]}]\n",
      "items[0].shortDesc");
  check_only_problem(
      "version: v1\nkind: plugin\nitems: [{target: c, actions: [{action: a, example: {a: 1}}]}]\n",
      "items[0].actions[0].example");
  check_only_problem(
      "version: v1\nkind: plugin\nitems: [{target: c, actions: [{action: a, programs: x}]}]\n",
      "items[0].actions[0].programs");
  check_only_problem(
      "version: v1\nkind: plugin\nitems: [{target: c, actions: [{action: a, categories: [a, "
      "{b: c}]}]}]\n",
      "items[0].actions[0].categories[1]");
  check_only_problem(
      "version: v1\nkind: plugin\nitems: [{target: c, actions: [{action: a, "
      "actionProcessHang: sometimes}]}]\n",
      "items[0].actions[0].actionProcessHang");
  check_only_problem(
      "version: v1\nkind: plugin\nitems: [{target: c, actions: [{action: a, flags: x}]}]\n",
      "items[0].actions[0].flags");
  check_only_problem(
      "version: v1\nkind: plugin\nitems: [{target: c, actions: [{action: a, matchers: [x]}]}]\n",
      "items[0].actions[0].matchers[0]");
}

TEST_CASE("spec: empty optional fields are allowed") {
  const PluginSpec spec = parse_spec_yaml(R"(version: v1
kind: plugin
items:
- target: cpu
  shortDesc:
  flags:
  actions:
  - action: fullload
    aliases: []
    matchers: []
    flags: []
    example: ""
)");
  CHECK(spec.items.at(0).actions.at(0).flags.empty());
  CHECK(spec.items.at(0).short_desc.empty());
}

TEST_CASE("spec: flag names") {
  for (const std::string_view good : {"cpu-percent", "disableNtp", "a.b", "x_y", "9lives"}) {
    CAPTURE(good);
    CHECK(only_flag(parse_spec_yaml(with_flag("name: " + std::string(good)))).name == good);
  }
  for (const std::string_view bad : {"Cpu", "-x", ".x", "a b", "a/b", "\"\"", "[x]"}) {
    CAPTURE(bad);
    check_only_problem(with_flag("name: " + std::string(bad)), flag_field("name"));
  }
  check_only_problem(with_flag("desc: nameless"), flag_field("name"));
  check_only_problem(with_flags("x"), std::string(kFirstFlag));
}

TEST_CASE("spec: reserved flags are dropped wherever they appear") {
  const PluginSpec spec = parse_spec_yaml(R"(version: v1
kind: plugin
items:
- target: cpu
  flags:
  - name: uid
  - name: cgroup-root
  actions:
  - action: fullload
    matchers:
    - name: endpoint
    flags:
    - name: cpu-percent
    - name: timeout
      desc: set timeout for experiment in seconds
    - name: async
      desc: whether to create asynchronously, default is false
      noArgs: true
      type: whatever
      surprise: key
)");
  const blade::TargetSpec &target = spec.items.at(0);
  REQUIRE(target.flags.size() == 1);
  CHECK(target.flags[0].name == "cgroup-root");
  const blade::ActionSpec &action = target.actions.at(0);
  CHECK(action.matchers.empty());
  REQUIRE(action.flags.size() == 1);
  CHECK(action.flags[0].name == "cpu-percent");
}

TEST_CASE("spec: duplicate targets within a scope") {
  const std::string yaml = R"(version: v1
kind: plugin
items:
- target: cpu
  actions: [{action: a}]
- target: mem
  actions: [{action: a}]
- target: cpu
  actions: [{action: b}]
)";
  check_only_problem(yaml, "items[2].target");
  CHECK(description_of(spec_error(yaml), "items[2].target").find("items[0].target") !=
        std::string::npos);
  check_only_problem(R"(version: v1
kind: plugin
items:
- {target: cpu, scope: host, actions: [{action: a}]}
- {target: cpu, actions: [{action: a}]}
)",
                     "items[1].target");

  const PluginSpec spec = parse_spec_yaml(R"(version: v1
kind: plugin
items:
- {target: cpu, actions: [{action: a}]}
- {target: cpu, scope: docker, actions: [{action: a}]}
)");
  CHECK(spec.items.size() == 2);
}

TEST_CASE("spec: duplicate action names in a target") {
  check_only_problem(R"(version: v1
kind: plugin
items:
- target: cpu
  actions:
  - action: fullload
  - action: other
  - action: fullload
)",
                     "items[0].actions[2].action");
  // The same action name in different targets is fine.
  const PluginSpec spec = parse_spec_yaml(R"(version: v1
kind: plugin
items:
- {target: cpu, actions: [{action: load}]}
- {target: mem, actions: [{action: load}]}
)");
  CHECK(spec.items.size() == 2);
}

TEST_CASE("spec: aliases must resolve to one action") {
  // An alias equal to another action's name.
  check_only_problem(R"(version: v1
kind: plugin
items:
- target: cpu
  actions:
  - {action: fullload, aliases: [load]}
  - {action: load}
)",
                     "items[0].actions[0].aliases[0]");
  // An alias equal to another action's alias.
  check_only_problem(R"(version: v1
kind: plugin
items:
- target: cpu
  actions:
  - {action: fullload, aliases: [fl, load]}
  - {action: fastload, aliases: [fl]}
)",
                     "items[0].actions[1].aliases[0]");
  // Repeated within one action, or repeating the action's own name.
  check_only_problem(R"(version: v1
kind: plugin
items:
- target: cpu
  actions:
  - {action: fullload, aliases: [fl, fl]}
)",
                     "items[0].actions[0].aliases[1]");
  check_only_problem(R"(version: v1
kind: plugin
items:
- target: cpu
  actions:
  - {action: fullload, aliases: [fullload]}
)",
                     "items[0].actions[0].aliases[0]");
  // The same alias in different targets is fine.
  const PluginSpec spec = parse_spec_yaml(R"(version: v1
kind: plugin
items:
- {target: cpu, actions: [{action: load, aliases: [l]}]}
- {target: mem, actions: [{action: load, aliases: [l]}]}
)");
  CHECK(spec.items.size() == 2);
}

TEST_CASE("spec: duplicate flags across target flags, matchers and action flags") {
  check_only_problem(with_flags("{name: a}, {name: b}, {name: a}"),
                     "items[0].actions[0].flags[2].name");
  check_only_problem(R"(version: v1
kind: plugin
items:
- target: network
  flags: [{name: interface}]
  actions:
  - action: delay
    flags: [{name: time}, {name: interface}]
)",
                     "items[0].actions[0].flags[1].name");
  check_only_problem(R"(version: v1
kind: plugin
items:
- target: network
  actions:
  - action: delay
    matchers: [{name: local-port}]
    flags: [{name: local-port}]
)",
                     "items[0].actions[0].flags[0].name");
  check_only_problem(R"(version: v1
kind: plugin
items:
- target: network
  flags: [{name: interface}]
  actions:
  - action: delay
    matchers: [{name: interface}]
)",
                     "items[0].actions[0].matchers[0].name");
  // Duplicated target flags are reported once, not once per action.
  check_only_problem(R"(version: v1
kind: plugin
items:
- target: network
  flags: [{name: interface}, {name: interface}]
  actions: [{action: delay}, {action: loss}]
)",
                     "items[0].flags[1].name");
  // Sibling actions may reuse a flag name.
  const PluginSpec spec = parse_spec_yaml(R"(version: v1
kind: plugin
items:
- target: network
  actions:
  - {action: delay, flags: [{name: time}]}
  - {action: reorder, flags: [{name: time}]}
)");
  CHECK(spec.items.at(0).actions.size() == 2);
}

TEST_CASE("spec: noArgs flags are booleans") {
  CHECK(only_flag(parse_spec_yaml(with_flag("name: force, noArgs: true"))).type == FlagType::Bool);
  CHECK(only_flag(parse_spec_yaml(with_flag("name: force, noArgs: true, type: bool"))).type ==
        FlagType::Bool);
  CHECK(only_flag(parse_spec_yaml(with_flag("name: force, noArgs: false"))).type ==
        FlagType::String);
  check_only_problem(with_flag("name: force, noArgs: true, type: int"), flag_field("type"));
  check_only_problem(with_flag("name: force, noArgs: true, list: true"), flag_field("list"));
  check_only_problem(with_flag("name: force, noArgs: perhaps"), flag_field("noArgs"));
  check_only_problem(with_flag("name: force, required: [true]"), flag_field("required"));
  check_only_problem(with_flag("name: force, requiredWhenDestroyed: 2"),
                     flag_field("requiredWhenDestroyed"));
  check_only_problem(with_flag("name: force, list: nope"), flag_field("list"));
}

TEST_CASE("spec: flag types") {
  const std::vector<std::pair<std::string_view, FlagType>> types{
      {"string", FlagType::String},
      {"int", FlagType::Int},
      {"float", FlagType::Float},
      {"bool", FlagType::Bool},
      {"duration", FlagType::Duration},
      {"ip", FlagType::Ip},
      {"cidr", FlagType::Cidr},
      {"port", FlagType::Port},
      {"port-range", FlagType::PortRange},
      {"path", FlagType::Path},
  };
  for (const auto &[name, type] : types) {
    CAPTURE(name);
    CHECK(only_flag(parse_spec_yaml(with_flag("name: x, type: " + std::string(name)))).type ==
          type);
  }
  check_only_problem(with_flag("name: x, type: integer"), flag_field("type"));
  check_only_problem(with_flag("name: x, type: Int"), flag_field("type"));
  check_only_problem(with_flag("name: x, type: [int]"), flag_field("type"));
  CHECK(description_of(spec_error(with_flag("name: x, type: integer")), flag_field("type"))
            .find("port-range") != std::string::npos);
}

TEST_CASE("spec: enum values") {
  const blade::FlagSpec &mode =
      only_flag(parse_spec_yaml(with_flag("name: mode, type: enum, values: [ram, cache]")));
  CHECK(mode.values == std::vector<std::string>{"ram", "cache"});
  check_only_problem(with_flag("name: mode, type: enum"), flag_field("values"));
  check_only_problem(with_flag("name: mode, type: enum, values: []"), flag_field("values"));
  check_only_problem(with_flag("name: mode, values: [ram]"), flag_field("values"));
  check_only_problem(with_flag("name: mode, type: int, values: [1]"), flag_field("values"));
  check_only_problem(with_flag("name: mode, type: enum, values: ram"), flag_field("values"));
  check_only_problem(with_flag("name: mode, type: enum, values: [ram, cache, ram]"),
                     flag_field("values[2]"));
  check_only_problem(with_flag("name: mode, type: enum, values: [ram, [x]]"),
                     flag_field("values[1]"));
}

TEST_CASE("spec: min and max") {
  for (const std::string_view type : {"int", "float", "duration", "port"}) {
    CAPTURE(type);
    const blade::FlagSpec &flag = only_flag(
        parse_spec_yaml(with_flag("name: x, type: " + std::string(type) + ", min: 1, max: 100")));
    CHECK(flag.min == 1.0);
    CHECK(flag.max == 100.0);
  }
  for (const std::string_view type : {"string", "bool", "ip", "cidr", "port-range", "path"}) {
    CAPTURE(type);
    check_only_problem(with_flag("name: x, type: " + std::string(type) + ", min: 1"),
                       flag_field("min"));
    check_only_problem(with_flag("name: x, type: " + std::string(type) + ", max: 1"),
                       flag_field("max"));
  }
  check_only_problem(with_flag("name: x, min: 1"), flag_field("min"));  // string by default
  check_only_problem(with_flag("name: x, type: enum, values: [a], max: 1"), flag_field("max"));
  check_only_problem(with_flag("name: x, type: int, min: 10, max: 5"), flag_field("min"));
  check_only_problem(with_flag("name: x, type: int, min: ten"), flag_field("min"));
  check_only_problem(with_flag("name: x, type: int, max: [1]"), flag_field("max"));
  check_only_problem(with_flag("name: x, type: float, max: .nan"), flag_field("max"));
  const blade::FlagSpec &equal =
      only_flag(parse_spec_yaml(with_flag("name: x, type: float, min: -0.5, max: -0.5")));
  CHECK(equal.min == -0.5);
}

TEST_CASE("spec: defaults must pass the flag's own validation") {
  CHECK(only_flag(parse_spec_yaml(with_flag("name: x, type: int, min: 0, max: 100, default: 100")))
            .default_value == "100");
  CHECK(
      only_flag(parse_spec_yaml(with_flag("name: x, type: duration, default: 5m"))).default_value ==
      "5m");
  CHECK(only_flag(parse_spec_yaml(with_flag("name: x, type: int, list: true, default: '1, 2'")))
            .default_value == "1, 2");
  CHECK(only_flag(parse_spec_yaml(with_flag("name: x, default: ''"))).default_value == "");
  CHECK_FALSE(only_flag(parse_spec_yaml(with_flag("name: x, default: ~"))).default_value);

  check_only_problem(with_flag("name: x, type: int, min: 0, max: 100, default: 120"),
                     flag_field("default"));
  CHECK(description_of(spec_error(with_flag("name: x, type: int, min: 0, max: 100, default: 120")),
                       flag_field("default")) == "must be between 0 and 100, got 120");
  check_only_problem(with_flag("name: x, type: int, default: many"), flag_field("default"));
  check_only_problem(with_flag("name: x, type: duration, max: 60, default: 2m"),
                     flag_field("default"));
  check_only_problem(with_flag("name: x, type: enum, values: [a, b], default: c"),
                     flag_field("default"));
  check_only_problem(with_flag("name: x, type: path, default: relative/dir"),
                     flag_field("default"));
  check_only_problem(with_flag("name: x, type: port, list: true, default: '80,,81'"),
                     flag_field("default"));
  check_only_problem(with_flag("name: x, noArgs: true, default: maybe"), flag_field("default"));
  check_only_problem(with_flag("name: x, default: [1, 2]"), flag_field("default"));
  check_only_problem(with_flag("name: x, default: \"a\\x01b\""), flag_field("default"));
}

TEST_CASE("spec: a required flag cannot have a default") {
  check_only_problem(with_flag("name: x, required: true, default: a"), flag_field("default"));
  CHECK(
      only_flag(parse_spec_yaml(with_flag("name: x, required: false, default: a"))).default_value ==
      "a");
}

TEST_CASE("spec: every problem is collected, the first is the message") {
  const blade::Error error = spec_error(R"(version: v2
kind: plugin
items:
- target: Cpu
  actions:
  - action: fullload
    flags:
    - {name: a, type: int, min: 5, max: 1}
    - {name: b, type: enum}
    - {name: a}
- target: mem
  bogus: 1
  actions: []
)");
  CHECK(fields(error) == std::vector<std::string>{
                             "version",
                             "items[0].target",
                             "items[0].actions[0].flags[0].min",
                             "items[0].actions[0].flags[1].values",
                             "items[0].actions[0].flags[2].name",
                             "items[1].bogus",
                             "items[1].actions",
                         });
  CHECK(std::string(error.what()) == "version: must be \"v1\", got \"v2\"");
}

TEST_CASE("effective_flags: target flags, then matchers, then action flags") {
  const PluginSpec spec = parse_spec_yaml(R"(version: v1
kind: plugin
items:
- target: network
  flags: [{name: interface}]
  actions:
  - action: delay
    matchers: [{name: local-port}, {name: remote-port}]
    flags: [{name: time}]
)");
  const blade::TargetSpec &target = spec.items.at(0);
  const std::vector<const blade::FlagSpec *> flags =
      blade::effective_flags(target, target.actions.at(0));
  std::vector<std::string> names;
  for (const blade::FlagSpec *flag : flags)
    names.push_back(flag->name);
  CHECK(names == std::vector<std::string>{"interface", "local-port", "remote-port", "time"});
  CHECK(flags[0] == &target.flags[0]);
}

TEST_CASE("FlagType names round-trip") {
  for (const std::string_view name : {"string", "int", "float", "bool", "duration", "ip", "cidr",
                                      "port", "port-range", "path", "enum"}) {
    CAPTURE(name);
    const std::optional<FlagType> type = blade::flag_type_from_string(name);
    REQUIRE(type.has_value());
    CHECK(blade::to_string(*type) == name);
  }
  CHECK_FALSE(blade::flag_type_from_string(""));
  CHECK_FALSE(blade::flag_type_from_string("INT"));
  CHECK_FALSE(blade::flag_type_from_string("portrange"));
}
