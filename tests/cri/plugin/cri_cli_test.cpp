// cri.so in a real bladed, driven by the real blade CLI: ChaosBlade's
// `blade create cri <target> <action>` reaches the cri scope (the answer
// is the plugin's, naming the runtime it looked in), the spec bladed
// serves has the cri targets but not time or systemd, and the help shows
// the container flags. The runtimes' roots are empty temp dirs, so nothing
// is found and nothing is changed.
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "../../cli/blade_run.hpp"
#include "../../server/bladed_process.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace blade::test;

namespace {

// bladed with cri.so and its helper, configured with runtime roots under
// `roots` that hold no container.
struct CriDaemon {
  TempDir roots{"cri-cli-roots"};
  BladedProcess d{options()};

  BladedOptions options() {
    fs::create_directories(roots / "runc");
    const fs::path config = roots / "bladed.yaml";
    std::ofstream(config) << "plugins:\n  cri:\n"
                          << "    runc_root: " << (roots / "runc").string() << "\n"
                          << "    containerd_state: " << (roots / "containerd").string() << "\n"
                          << "    crio_storage: " << (roots / "crio").string() << "\n"
                          << "    docker_socket: " << (roots / "docker.sock").string() << "\n";
    BladedOptions o;
    o.plugins = {};
    o.plugin_files = {fs::path(BLADE_BUILT_PLUGIN_DIR) / "cri.so",
                      fs::path(BLADE_BUILT_PLUGIN_DIR) / "blade-cri-helper"};
    o.args = {"--config", config.string()};
    return o;
  }

  BladeRunner blade() const {
    return BladeRunner({"BLADE_ENDPOINT=" + d.url(), "BLADE_API_TOKEN=" + kToken});
  }
};

}  // namespace

TEST_CASE("blade create cri <target> <action> is scope cri, answered by the cri plugin") {
  CriDaemon cri;
  const auto blade = cri.blade();

  auto r = blade.run({"create", "cri", "cpu", "fullload", "--cpu-percent", "50", "--container-id",
                      "nope", "--container-runtime", "runc"});
  INFO(r.out, r.err);
  CHECK(r.code != 0);
  // The plugin's own words: it looked in the runc root it was configured with.
  CHECK(r.err.find("no running container matches container-id nope") != std::string::npos);
  CHECK(r.err.find((cri.roots / "runc").string()) != std::string::npos);

  // --scope cri says the same; the two spellings must agree.
  r = blade.run({"create", "cpu", "fullload", "--scope", "cri", "--container-id", "nope",
                 "--container-runtime", "runc"});
  CHECK(r.err.find("no running container matches container-id nope") != std::string::npos);
  r = blade.run({"create", "cri", "cpu", "fullload", "--scope", "host", "--container-id", "x"});
  CHECK(r.code != 0);
  CHECK(r.err.find("scope cri given twice") != std::string::npos);

  // Not offered in a container.
  r = blade.run({"create", "cri", "time", "travel", "--offset", "1h", "--container-id", "x"});
  CHECK(r.code != 0);
  CHECK(r.err.find("NOT_FOUND") != std::string::npos);

  // The help is the cri entry's: the cpu flags and the container flags.
  r = blade.run({"create", "cri", "cpu", "fullload", "--help"});
  CHECK(r.code == 0);
  CHECK(r.out.find("cpu-percent") != std::string::npos);
  CHECK(r.out.find("container-label-selector") != std::string::npos);

  // `blade create cri --help` lists the cri scope's targets.
  r = blade.run({"create", "cri", "--help"});
  CHECK(r.code == 0);
  CHECK(r.out.find("fullload") != std::string::npos);
  CHECK(r.out.find("travel") == std::string::npos);

  // Nothing was created: every experiment the CLI asked for failed or was refused.
  auto c = cri.d.client();
  auto res = c.Get("/v1/experiments?status=running", auth());
  REQUIRE(res);
  CHECK(json::parse(res->body)["data"]["items"].empty());
}

TEST_CASE("bladed serves the cri targets in scope cri, without time and systemd") {
  CriDaemon cri;
  auto c = cri.d.client();
  auto res = c.Get("/v1/specs", auth());
  REQUIRE(res);
  std::set<std::string> targets;
  const json body = json::parse(res->body);
  for (const auto &e : body["data"]) {
    if (e.value("scope", "") != "cri") continue;
    targets.insert(e.value("target", ""));
  }
  CHECK(targets == std::set<std::string>{"cpu", "mem", "process", "strace", "file", "script",
                                         "disk", "network"});
}
