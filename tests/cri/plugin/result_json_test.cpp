// What users read of a cri fault (create's result, a dry run's plan,
// destroy's report) names host paths: the helper's /proc/self/fd/4 means
// nothing outside it.
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "result_json.hpp"

using blade::cri::with_host_paths;
using nlohmann::json;

TEST_CASE("paths under the inner state dir become the container's state dir on the host") {
  const std::string inner = json{{"backup", "/proc/self/fd/4/backups/u1/deleted"},
                                 {"dir", "/proc/self/fd/4"},
                                 {"nested", {{"list", {"/proc/self/fd/4/x", 7, "/etc/hosts"}}}},
                                 {"lookalike", "/proc/self/fd/41/y"},
                                 {"deleted", "/srv/victim.txt"}}
                                .dump();
  const json out = json::parse(with_host_paths(inner, "/var/lib/blade/state/cri/containers/c1"));
  CHECK(out["backup"] == "/var/lib/blade/state/cri/containers/c1/backups/u1/deleted");
  CHECK(out["dir"] == "/var/lib/blade/state/cri/containers/c1");
  CHECK(out["nested"]["list"][0] == "/var/lib/blade/state/cri/containers/c1/x");
  CHECK(out["nested"]["list"][1] == 7);
  CHECK(out["nested"]["list"][2] == "/etc/hosts");
  // Another fd's path and the fault's own paths in the container stay.
  CHECK(out["lookalike"] == "/proc/self/fd/41/y");
  CHECK(out["deleted"] == "/srv/victim.txt");
}

TEST_CASE("text that is not JSON is given back unchanged") {
  CHECK(with_host_paths("not json", "/x") == "not json");
}
