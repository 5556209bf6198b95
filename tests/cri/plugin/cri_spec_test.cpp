// The cri spec is generated from the os, disk and network specs: every
// target/action of theirs is offered with scope cri, with its own flags
// unchanged plus the container flags, but for time travel and systemd stop;
// and the daemon's own spec parser accepts it.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "blade/core/spec/spec.hpp"
#include "container_flags.hpp"

namespace {

std::string read_file(const std::string &path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot read " << path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

blade::PluginSpec host_spec(const std::string &name) {
  return blade::parse_spec_yaml(read_file(std::string(BLADE_SOURCE_ROOT) + "/plugins/" + name +
                                          "/spec-yaml/" + name + ".yaml"));
}

const blade::TargetSpec *find_target(const blade::PluginSpec &s, const std::string &target) {
  for (const auto &t : s.items)
    if (t.target == target) return &t;
  return nullptr;
}

const blade::ActionSpec *find_action(const blade::TargetSpec &t, const std::string &action) {
  for (const auto &a : t.actions)
    if (a.name == action) return &a;
  return nullptr;
}

std::map<std::string, const blade::FlagSpec *> flags_of(const blade::TargetSpec &t,
                                                        const blade::ActionSpec &a) {
  std::map<std::string, const blade::FlagSpec *> out;
  for (const blade::FlagSpec *f : blade::effective_flags(t, a))
    out.emplace(f->name, f);
  return out;
}

}  // namespace

TEST_CASE(
    "every os, disk and network action is in the cri spec with scope cri, its flags and the "
    "container flags") {
  const blade::PluginSpec cri = blade::parse_spec_yaml(read_file(BLADE_CRI_SPEC_PATH));
  for (const auto &t : cri.items)
    CHECK_MESSAGE(t.scope == "cri", t.target);

  const std::set<std::pair<std::string, std::string>> excluded = {{"time", "travel"},
                                                                  {"systemd", "stop"}};
  int compared = 0, host_actions = 0;
  for (const std::string name : {"os", "disk", "network"}) {
    const blade::PluginSpec host = host_spec(name);
    for (const auto &ht : host.items) {
      for (const auto &ha : ht.actions) {
        ++host_actions;
        CAPTURE(ht.target);
        CAPTURE(ha.name);
        const blade::TargetSpec *ct = find_target(cri, ht.target);
        if (excluded.count({ht.target, ha.name})) {
          CHECK((ct == nullptr || find_action(*ct, ha.name) == nullptr));
          continue;
        }
        REQUIRE(ct != nullptr);
        const blade::ActionSpec *ca = find_action(*ct, ha.name);
        REQUIRE(ca != nullptr);
        CHECK(ca->aliases == ha.aliases);
        CHECK(ca->short_desc == ha.short_desc);
        const auto host_flags = flags_of(ht, ha);
        const auto cri_flags = flags_of(*ct, *ca);
        for (const auto &[flag, spec] : host_flags) {
          CAPTURE(flag);
          REQUIRE(cri_flags.count(flag) == 1);
          const blade::FlagSpec *c = cri_flags.at(flag);
          CHECK(c->desc == spec->desc);
          CHECK(c->type == spec->type);
          CHECK(c->required == spec->required);
          CHECK(c->default_value == spec->default_value);
          CHECK(c->min == spec->min);
          CHECK(c->max == spec->max);
          CHECK(c->values == spec->values);
        }
        for (std::string_view cf : blade::cri::container_flags()) {
          CAPTURE(cf);
          CHECK(cri_flags.count(std::string(cf)) == 1);
          CHECK(host_flags.count(std::string(cf)) == 0);
        }
        CHECK(cri_flags.size() == host_flags.size() + blade::cri::container_flags().size());
        ++compared;
      }
    }
  }
  // 17 os actions, 2 disk, 10 network (a host spec that lost a family
  // fails here), less the two excluded; and the cri spec has nothing else.
  CHECK(host_actions == 29);
  CHECK(compared == host_actions - 2);
  int cri_actions = 0;
  for (const auto &t : cri.items)
    cri_actions += static_cast<int>(t.actions.size());
  CHECK(cri_actions == compared);
  CHECK(find_target(cri, "time") == nullptr);
  CHECK(find_target(cri, "systemd") == nullptr);
}

TEST_CASE(
    "a flag of os.yaml shows up in cri with its description, and the examples name the scope") {
  const blade::PluginSpec cri = blade::parse_spec_yaml(read_file(BLADE_CRI_SPEC_PATH));
  const blade::TargetSpec *cpu = find_target(cri, "cpu");
  REQUIRE(cpu != nullptr);
  const blade::ActionSpec *load = find_action(*cpu, "fullload");
  REQUIRE(load != nullptr);
  const auto flags = flags_of(*cpu, *load);
  REQUIRE(flags.count("cpu-percent") == 1);
  CHECK(flags.at("cpu-percent")->max == 100);
  CHECK(flags.at("cpu-percent")->default_value == "100");
  CHECK(load->example.find("blade create cri cpu load") != std::string::npos);
  CHECK(load->example.find("--container-id") != std::string::npos);

  REQUIRE(flags.count("container-runtime") == 1);
  CHECK(flags.at("container-runtime")->type == blade::FlagType::Enum);
  CHECK(flags.at("container-runtime")->values ==
        std::vector<std::string>{"runc", "crun", "containerd", "cri-o", "docker"});
  REQUIRE(flags.count("container-namespace") == 1);
  CHECK(flags.at("container-namespace")->default_value == "k8s.io");
}
