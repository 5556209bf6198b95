// cri.so through the SDK's stand-in host, on runtime roots that hold no
// container: destroy of a fault whose container was deleted answers OK and
// says so (twice), a record written before anything changed is undone as
// nothing, and create's bad input is refused naming the flag, before any
// record is written.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <filesystem>
#include <string>

#include <blade/plugin_test.hpp>
#include <nlohmann/json.hpp>

namespace bt = blade::sdk::testing;
namespace fs = std::filesystem;

namespace {

// Roots of every runtime under a temp dir: runc's exists and is empty, the
// others are missing (a runtime that does not answer).
struct EmptyRoots {
  bt::TempDir dir;
  std::string runc_root = dir.path() + "/runc";
  EmptyRoots() { fs::create_directories(runc_root); }
  std::string config() const {
    return nlohmann::json{{"runc_root", runc_root},
                          {"containerd_state", dir.path() + "/containerd"},
                          {"containerd_runc_root", dir.path() + "/containerd-runc"},
                          {"crio_storage", dir.path() + "/crio"},
                          {"crio_runc_root", dir.path() + "/crio-runc"},
                          {"docker_socket", dir.path() + "/docker.sock"}}
        .dump();
  }
};

bt::Options options(const EmptyRoots &roots) {
  bt::Options o;
  o.config_json = roots.config();
  o.scope = "cri";
  return o;
}

// What cri.so wrote for a cpu load in runc container `id` once the helper
// had saved the inner record.
std::string record(const std::string &id, bool with_inner) {
  nlohmann::json r = {
      {"container",
       {{"runtime", "runc"},
        {"id", id},
        {"name", ""},
        {"ns", ""},
        {"init_pid", 999999},
        {"init_start", 12345}}},
      {"enter",
       {{"mnt", false},
        {"pid", true},
        {"net", false},
        {"ipc", false},
        {"uts", false},
        {"cgroup", true}}},
      {"helper", {{"pid", 999998}, {"start", 1}}},
      {"inner", nullptr}};
  if (with_inner) r["inner"] = {{"burners", 2}};
  return r.dump();
}

const bt::Flags kFlags = {{"container-id", "gone0001"}, {"container-runtime", "runc"},
                          {"cpu-percent", "50"}};

}  // namespace

TEST_CASE("destroy after the container was deleted: OK, the report says deleted, twice") {
  EmptyRoots roots;
  bt::Host host = bt::Host::load(BLADE_CRI_PLUGIN_PATH, options(roots));
  bt::Instance &inst = host.start();
  // The inner state dir the create made for the container.
  const std::string inner_dir = host.state_dir() + "/containers/gone0001";
  fs::create_directories(inner_dir);

  bt::CallOptions opts;
  opts.uid = "cri-destroy-deleted";
  for (int round = 0; round < 2; ++round) {
    CAPTURE(round);
    const auto r = inst.destroy("cpu", "fullload", kFlags, record("gone0001", true), opts);
    REQUIRE_MESSAGE(r.ok(), r.describe());
    const auto report = nlohmann::json::parse(r.result);
    CHECK(report["container"] == "deleted");
    CHECK(report["id"] == "gone0001");
    CHECK(report["vanished"].get<std::string>().find("namespaces") != std::string::npos);
    CHECK_FALSE(fs::exists(inner_dir));
  }
}

TEST_CASE("destroy of a record written ahead of the helper: nothing to undo") {
  EmptyRoots roots;
  bt::Host host = bt::Host::load(BLADE_CRI_PLUGIN_PATH, options(roots));
  bt::Instance &inst = host.start();
  bt::CallOptions opts;
  opts.uid = "cri-destroy-ahead";
  const auto r = inst.destroy("cpu", "fullload", kFlags, record("gone0001", false), opts);
  REQUIRE_MESSAGE(r.ok(), r.describe());
  const auto report = nlohmann::json::parse(r.result);
  CHECK(report["restored"] == false);
  CHECK(report["container"]["id"] == "gone0001");
}

TEST_CASE("destroy of a record that is not the cri plugin's: refused naming the field") {
  EmptyRoots roots;
  bt::Host host = bt::Host::load(BLADE_CRI_PLUGIN_PATH, options(roots));
  bt::Instance &inst = host.start();
  bt::CallOptions opts;
  opts.uid = "cri-destroy-bad";
  const auto r = inst.destroy("cpu", "fullload", kFlags, std::string(R"({"pids":[1]})"), opts);
  CHECK(r.status == BLADE_STATUS_INVALID_ARGUMENT);
  CHECK(r.message.find("container.runtime") != std::string::npos);
}

TEST_CASE("create: no such container is 404, bad flags are 400 naming the flag; no record written") {
  EmptyRoots roots;
  bt::Host host = bt::Host::load(BLADE_CRI_PLUGIN_PATH, options(roots));
  bt::Instance &inst = host.start();

  auto r = inst.create("cpu", "fullload", kFlags);
  CHECK_MESSAGE(r.status == BLADE_STATUS_NOT_FOUND, r.describe());
  CHECK(r.message.find("runc") != std::string::npos);
  CHECK(r.saved_restores.empty());
  CHECK_FALSE(r.restore);

  r = inst.create("cpu", "fullload", {{"cpu-percent", "50"}});
  CHECK_MESSAGE(r.status == BLADE_STATUS_INVALID_ARGUMENT, r.describe());
  CHECK(r.message.find("container-id") != std::string::npos);
  CHECK(r.saved_restores.empty());

  r = inst.create("cpu", "fullload",
                  {{"container-id", "x"}, {"container-runtime", "runc"},
                   {"container-state-root", "relative/root"}});
  CHECK_MESSAGE(r.status == BLADE_STATUS_INVALID_ARGUMENT, r.describe());
  CHECK(r.message.find("container-state-root") != std::string::npos);

  r = inst.create("cpu", "fullload", {{"container-id", "x"}, {"container-state-root", "/x"}});
  CHECK_MESSAGE(r.status == BLADE_STATUS_INVALID_ARGUMENT, r.describe());
  CHECK(r.message.find("container-runtime") != std::string::npos);

  // Nothing was left in the state dir by the refused calls.
  CHECK_FALSE(fs::exists(host.state_dir() + "/containers"));
}

TEST_CASE("the plugin offers no time or systemd action in a container") {
  EmptyRoots roots;
  bt::Host host = bt::Host::load(BLADE_CRI_PLUGIN_PATH, options(roots));
  bt::Instance &inst = host.start();
  // The spec does not list them, so bladed routes nothing here; a request
  // that got here anyway is refused before any container is looked up.
  auto r = inst.create("time", "travel", {{"container-id", "gone0001"}, {"offset", "1h"}});
  CHECK_MESSAGE(r.status == BLADE_STATUS_NOT_SUPPORTED, r.describe());
}
