// cri.so through the SDK's stand-in host, on runtime roots that hold no
// container: destroy of a fault whose container was deleted answers OK and
// says so (twice), a record written before anything changed is undone as
// nothing, and create's bad input is refused naming the flag, before any
// record is written.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <blade/plugin_test.hpp>
#include <nlohmann/json.hpp>

#include "../../support/child_process.hpp"

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

// cri.so in the stand-in host, configured with `roots`.
struct Plugin {
  EmptyRoots roots;
  bt::Host host = bt::Host::load(BLADE_CRI_PLUGIN_PATH, options(roots));
  bt::Instance &inst = host.start();

  bt::CallResult destroy(const char *target, const char *action, const bt::Flags &flags,
                         const std::string &record, const char *uid) {
    bt::CallOptions opts;
    opts.uid = uid;
    return inst.destroy(target, action, flags, record, opts);
  }
};

// What cri.so wrote for a cpu load in runc container `id` once the helper
// had saved the inner record.
std::string record(const std::string &id, bool with_inner, int init_pid = 999999,
                   std::uint64_t init_start = 12345) {
  nlohmann::json r = {{"container",
                       {{"runtime", "runc"},
                        {"id", id},
                        {"name", ""},
                        {"ns", ""},
                        {"init_pid", init_pid},
                        {"init_start", init_start}}},
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

const bt::Flags kFlags = {
    {"container-id", "gone0001"}, {"container-runtime", "runc"}, {"cpu-percent", "50"}};

}  // namespace

TEST_CASE("destroy after the container was deleted: OK, the report says deleted, twice") {
  Plugin p;
  // The inner state dir the create made for the container.
  const std::string inner_dir = p.host.state_dir() + "/containers/gone0001";
  fs::create_directories(inner_dir);

  for (int round = 0; round < 2; ++round) {
    CAPTURE(round);
    const auto r =
        p.destroy("cpu", "fullload", kFlags, record("gone0001", true), "c1d0000000000001");
    REQUIRE_MESSAGE(r.ok(), r.describe());
    const auto report = nlohmann::json::parse(r.result);
    CHECK(report["container"] == "deleted");
    CHECK(report["id"] == "gone0001");
    CHECK(report["vanished"].get<std::string>().find("namespaces") != std::string::npos);
    CHECK_FALSE(fs::exists(inner_dir));
  }
}

TEST_CASE("destroy of a record written ahead of the helper: nothing to undo") {
  Plugin p;
  const auto r =
      p.destroy("cpu", "fullload", kFlags, record("gone0001", false), "c1d0000000000002");
  REQUIRE_MESSAGE(r.ok(), r.describe());
  const auto report = nlohmann::json::parse(r.result);
  CHECK(report["restored"] == false);
  CHECK(report["container"]["id"] == "gone0001");
}

TEST_CASE("destroy of a record that is not the cri plugin's: refused naming the field") {
  Plugin p;
  const auto r = p.destroy("cpu", "fullload", kFlags, R"({"pids":[1]})", "c1d0000000000003");
  CHECK(r.status == BLADE_STATUS_INVALID_ARGUMENT);
  CHECK(r.message.find("container.runtime") != std::string::npos);
}

TEST_CASE(
    "create: no such container is 404, bad flags are 400 naming the flag; no record written") {
  Plugin p;
  bt::Instance &inst = p.inst;

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
                  {{"container-id", "x"},
                   {"container-runtime", "runc"},
                   {"container-state-root", "relative/root"}});
  CHECK_MESSAGE(r.status == BLADE_STATUS_INVALID_ARGUMENT, r.describe());
  CHECK(r.message.find("container-state-root") != std::string::npos);

  r = inst.create("cpu", "fullload", {{"container-id", "x"}, {"container-state-root", "/x"}});
  CHECK_MESSAGE(r.status == BLADE_STATUS_INVALID_ARGUMENT, r.describe());
  CHECK(r.message.find("container-runtime") != std::string::npos);

  // Nothing was left in the state dir by the refused calls.
  CHECK_FALSE(fs::exists(p.host.state_dir() + "/containers"));
}

TEST_CASE("the plugin offers no time or systemd action in a container") {
  Plugin p;
  // The spec does not list them, so bladed routes nothing here; a request
  // that got here anyway is refused before any container is looked up.
  auto r = p.inst.create("time", "travel", {{"container-id", "gone0001"}, {"offset", "1h"}});
  CHECK_MESSAGE(r.status == BLADE_STATUS_NOT_SUPPORTED, r.describe());
}

namespace {

// Field 22 of /proc/<pid>/stat: the start time runc records for its init.
std::uint64_t start_time(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i)
    rest >> field;
  return std::stoull(field);
}

}  // namespace

TEST_CASE("destroy after the container restarted: the load went with the old init, said so") {
  Plugin p;
  const EmptyRoots &roots = p.roots;
  // The restarted container: runc state naming a live process (started
  // here) as the init of container restart01, with its real start time.
  blade::test::ChildProcess init({"/bin/sleep", "60"});
  const std::uint64_t start = start_time(init.pid());
  fs::create_directories(roots.runc_root + "/restart01");
  {
    std::ofstream state(roots.runc_root + "/restart01/state.json");
    state << nlohmann::json{{"id", "restart01"},
                            {"init_process_pid", init.pid()},
                            {"init_process_start", start},
                            {"config", {{"labels", {"bundle=/nonexistent"}}}}}
                 .dump();
  }
  // The record names the old init (another pid, another start time).
  const auto r =
      p.destroy("cpu", "fullload", {{"container-id", "restart01"}, {"container-runtime", "runc"}},
                record("restart01", true, 999999, start + 1), "c1d0000000000004");
  REQUIRE_MESSAGE(r.ok(), r.describe());
  const auto report = nlohmann::json::parse(r.result);
  CHECK(report["container"] == "restarted");
  CHECK(report["old_init_pid"] == 999999);
  CHECK(report["init_pid"] == init.pid());
  CHECK(report["vanished"].get<std::string>().find("cpu burners") != std::string::npos);
  // Nothing was run in the new container for a load: its init is untouched.
  CHECK(start_time(init.pid()) == start);
}
