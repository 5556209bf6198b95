// A chaosblade-exec spec file that shares an action with a plugin, for the
// tests of routing between the two (tests/core/router_test.cpp,
// tests/server/specs_routing_test.cpp).
#pragma once

#include <filesystem>
#include <fstream>

namespace blade::test {

// Writes <home>/yaml/chaosblade-standin-spec-1.0.0.yaml: by the file name
// convention it is served by chaos_standin. It declares `cmarker touch`
// (also served by the c_marker plugin, which has the alias `t`; this file
// has none, and its short description is "external touch") and
// `marker touch`, which no plugin serves.
inline void write_shared_external_spec(const std::filesystem::path &home) {
  std::filesystem::create_directories(home / "yaml");
  std::ofstream(home / "yaml" / "chaosblade-standin-spec-1.0.0.yaml") << R"(version: v1
kind: plugin
items:
- target: cmarker
  shortDesc: the external side of cmarker
  scope: host
  actions:
  - action: touch
    shortDesc: external touch
    flags:
    - name: path
      desc: the marker file
      required: true
      type: path
- target: marker
  shortDesc: only external
  scope: host
  actions:
  - action: touch
    aliases: [t]
    shortDesc: create a marker file
    flags:
    - name: path
      desc: the marker file
      required: true
      type: path
)";
}

}  // namespace blade::test
