// The resolvers on recorded runtime state (tests/cri/resolvers/data): the
// state is copied to a temporary directory with each container's init made
// a real process this test starts (or a dead one, or a live one with the
// wrong start time), so liveness is checked against the real /proc. docker
// is asked over a real UNIX socket, of a fake Engine API this test serves
// from recorded answers.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../../../plugins/common/handles.hpp"
#include "../../../plugins/common/proc_reader.hpp"
#include "../../support/child_process.hpp"
#include "../../support/file_text.hpp"
#include "../../support/temp_dir.hpp"
#include "resolver.hpp"

namespace fs = std::filesystem;
using blade::cri::Container;
using blade::cri::RuntimeRoots;
using blade::cri::Selector;
using blade::cri::Unavailable;
using blade::test::ChildProcess;
using blade::test::TempDir;

namespace {

// The recorded containers.
const std::string kRuncWeb = "9b4e1c7a25f0d3e6b8a1c4d7e0f3a6b9c2d5e8f1a4b7c0d3e6f9a2b5c8d1e4f7";
const std::string kRuncWorker = "9b4e77d0c3f6a9b2e5d8c1f4a7b0e3d6c9f2a5b8e1d4c7f0a3b6e9d2c5f8a1b4";
const std::string kCtdK8s = "3f8a2c5e9b1d4f7a0c6e8b2d5f9a1c4e7b0d3f6a9c2e5b8d1f4a7c0e3b6d9f2a";
const std::string kCtdDefault = "c71e4a9d2b5f8e1a4d7c0b3e6f9a2d5c8b1e4f7a0d3c6b9e2f5a8d1c4b7e0a3f";
const std::string kCrioApi = "e5d1a8c47b2f6e9a3d0c5b8f1e4a7d2c9b6f3e0a7d4c1b8e5f2a9d6c3b0e7f4a";
const std::string kCrioSandbox = "4c9e2a7f1b5d8e3a6c0f9b2e5d8a1c4f7e0b3d6a9c2f5e8b1d4a7c0e3f6b9d2a";
const std::string kCrioSidecar = "f0a7c3e9d2b6f1a4e8c5b0d3f7a2e6c9b4d1f8a5e2c7b0d9f6a3e1c8b5d2f7a4";
const std::string kDockerWeb = "a1f3c5e7b9d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4";
const std::string kDockerPod = "b8d0f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0";
const std::string kDockerRedis = "c3e5a7b9d1f3e5a7c9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5";

// What a container's init is in the staged copy.
struct Init {
  pid_t pid = 0;
  std::uint64_t start = 0;
};

std::uint64_t start_of(pid_t pid) {
  auto s = blade::plugins::proc::start_time_of(pid);
  REQUIRE_MESSAGE(s.has_value(), "no /proc/", pid, "/stat");
  return *s;
}

// A live process standing in for a container's init.
class FakeInit {
 public:
  FakeInit() : child_({"/bin/sleep", "300"}) {}
  Init init() const { return {child_.pid(), start_of(child_.pid())}; }
  // The same pid with a start time it never had: a reused pid.
  Init reused() const { return {child_.pid(), start_of(child_.pid()) + 1}; }

 private:
  ChildProcess child_;
};

// A pid that no longer runs: started, killed and reaped.
Init dead_init() {
  Init out;
  {
    ChildProcess child({"/bin/sleep", "300"});
    out = {child.pid(), start_of(child.pid())};
  }
  REQUIRE_FALSE(blade::plugins::proc::start_time_of(out.pid).has_value());
  return out;
}

void replace_all(std::string &text, const std::string &from, const std::string &to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
}

// Copies data/<runtime> to `to`, filling each file's placeholders with the
// init of the container whose id is in its path.
void stage(const std::string &runtime, const fs::path &to,
           const std::map<std::string, Init> &inits) {
  const fs::path from = fs::path(BLADE_CRI_RESOLVER_DATA) / runtime;
  REQUIRE_MESSAGE(fs::is_directory(from), "recorded state missing: ", from.string());
  for (const auto &entry : fs::recursive_directory_iterator(from)) {
    if (!entry.is_regular_file()) continue;
    const fs::path rel = fs::relative(entry.path(), from);
    std::string text = blade::test::read_text(entry.path());
    const Init *init = nullptr;
    for (const auto &part : rel)
      if (auto it = inits.find(part.stem().string()); it != inits.end()) init = &it->second;
    if (!init && rel.filename() == "containers.json")
      init = &inits.begin()->second;  // no pid in it
    REQUIRE_MESSAGE(init != nullptr, "no init given for ", rel.string());
    replace_all(text, "@PID@", std::to_string(init->pid));
    replace_all(text, "@START@", std::to_string(init->start));
    replace_all(text, "@ROOT@", to.string());
    fs::create_directories((to / rel).parent_path());
    std::ofstream(to / rel) << text;
  }
}

// Every runtime's root inside `dir` (absent ones stay absent).
RuntimeRoots roots_in(const fs::path &dir) {
  RuntimeRoots r;
  r.runc_root = (dir / "runc/root").string();
  r.containerd_state = (dir / "containerd/state").string();
  r.containerd_runc_root = (dir / "containerd/runc").string();
  r.crio_storage = (dir / "crio/storage").string();
  r.crio_runc_root = (dir / "crio/runc").string();
  r.docker_socket = (dir / "docker.sock").string();
  return r;
}

Selector select(std::string runtime) {
  Selector s;
  s.runtime = std::move(runtime);
  return s;
}

// The message of the sdk error `fn` throws; fails when it throws another
// kind or nothing.
template <class Error>
std::string error_of(const std::function<void()> &fn) {
  try {
    fn();
  } catch (const Error &e) {
    return e.what();
  } catch (const std::exception &e) {
    FAIL("threw another kind of error: ", e.what());
  }
  FAIL("threw nothing");
  return {};
}

// A fake dockerd: the Engine API's two GETs answered from the staged
// recorded JSON, on a UNIX socket, honouring the label and status filters
// as dockerd does, and keeping the filters it was sent.
class FakeDocker {
 public:
  FakeDocker(const fs::path &socket, const fs::path &answers) : socket_(socket), answers_(answers) {
    server_.set_address_family(AF_UNIX);
    server_.Get("/containers/json", [this](const httplib::Request &req, httplib::Response &res) {
      auto filters = nlohmann::json::parse(req.get_param_value("filters"), nullptr, false);
      {
        std::lock_guard lock(mu_);
        filters_.push_back(filters);
      }
      auto all = nlohmann::json::parse(blade::test::read_text(answers_ / "containers.json"));
      nlohmann::json out = nlohmann::json::array();
      for (const auto &c : all) {
        bool keep = true;
        if (filters.is_object() && filters.contains("label"))
          for (const auto &term : filters["label"]) {
            std::string t = term.get<std::string>();
            auto eq = t.find('=');
            const auto &labels = c["Labels"];
            keep = keep && labels.contains(t.substr(0, eq)) &&
                   (eq == std::string::npos || labels[t.substr(0, eq)] == t.substr(eq + 1));
          }
        if (keep) out.push_back(c);
      }
      res.set_content(out.dump(), "application/json");
    });
    server_.Get(R"(/containers/([^/]+)/json)", [this](const httplib::Request &req,
                                                      httplib::Response &res) {
      fs::path file = answers_ / "inspect" / (std::string(req.matches[1]) + ".json");
      if (!fs::exists(file)) {
        res.status = 404;
        res.set_content(R"({"message":"No such container: )" + std::string(req.matches[1]) + "\"}",
                        "application/json");
        return;
      }
      res.set_content(blade::test::read_text(file), "application/json");
    });
    REQUIRE(server_.bind_to_port(socket_.c_str(), 80));
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeDocker() {
    server_.stop();
    thread_.join();
    fs::remove(socket_);
  }
  std::vector<nlohmann::json> filters() {
    std::lock_guard lock(mu_);
    return filters_;
  }

 private:
  fs::path socket_, answers_;
  httplib::Server server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<nlohmann::json> filters_;
};

// A UNIX socket bound but never listening: a runtime that does not answer
// (connect is refused).
class DeafSocket {
 public:
  explicit DeafSocket(const fs::path &path) : path_(path), fd_(::socket(AF_UNIX, SOCK_STREAM, 0)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.string().size() < sizeof addr.sun_path);
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    REQUIRE(::bind(fd_.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
  }
  ~DeafSocket() { fs::remove(path_); }

 private:
  fs::path path_;
  blade::plugins::UniqueFd fd_;
};

// A request carrying only `flags`, for parse_selector.
class FlagRequest {
 public:
  explicit FlagRequest(std::vector<std::pair<std::string, std::string>> flags)
      : flags_(std::move(flags)) {
    for (const auto &[n, v] : flags_) {
      names_.push_back(n.c_str());
      values_.push_back(v.c_str());
    }
    raw_.struct_size = sizeof raw_;
    raw_.flag_count = static_cast<std::uint32_t>(flags_.size());
    raw_.uid = "0123456789abcdef";
    raw_.scope = "cri";
    raw_.target = "cpu";
    raw_.action = "fullload";
    raw_.flag_names = names_.data();
    raw_.flag_values = values_.data();
    raw_.restore_json = nullptr;
  }
  blade::sdk::Request request() const { return blade::sdk::Request(&raw_); }

 private:
  std::vector<std::pair<std::string, std::string>> flags_;
  std::vector<const char *> names_, values_;
  blade_request raw_{};
};

Selector parse(std::vector<std::pair<std::string, std::string>> flags) {
  FlagRequest req(std::move(flags));
  return blade::cri::parse_selector(req.request());
}

}  // namespace

TEST_CASE("runc: recorded state, found by id, prefix, name and labels; stale pids left out") {
  TempDir dir("blade-cri-resolvers");
  FakeInit web, worker;
  stage("runc", dir.path() / "runc", {{kRuncWeb, web.init()}, {kRuncWorker, worker.init()}});
  const RuntimeRoots roots = roots_in(dir.path());

  SUBCASE("the full id: the container as runc's state says, its init's pid and start time") {
    Selector sel = select("runc");
    sel.id = kRuncWeb;
    Container c = blade::cri::find_container(sel, roots);
    CHECK(c.runtime == "runc");
    CHECK(c.id == kRuncWeb);
    CHECK(c.init_pid == web.init().pid);
    CHECK(c.init_start == web.init().start);
    CHECK(c.name == "web");
    CHECK(c.bundle == (dir.path() / "runc/bundles" / kRuncWeb).string());
    CHECK(c.labels.at("io.kubernetes.pod.name") == "shop-7d9f");
    CHECK(c.labels.at("app") == "shop");
    CHECK(c.labels.count("bundle") == 0);
    CHECK(c.ns.empty());
  }
  SUBCASE("a unique prefix") {
    Selector sel = select("runc");
    sel.id = "9b4e7";
    CHECK(blade::cri::find_container(sel, roots).id == kRuncWorker);
  }
  SUBCASE("an ambiguous prefix: 400 naming both") {
    Selector sel = select("runc");
    sel.id = "9b4e";
    auto msg =
        error_of<blade::sdk::InvalidArgument>([&] { blade::cri::find_container(sel, roots); });
    CHECK(msg.find(kRuncWeb) != std::string::npos);
    CHECK(msg.find(kRuncWorker) != std::string::npos);
    CHECK(msg.find("container-id 9b4e") != std::string::npos);
  }
  SUBCASE("the ambiguous prefix AND a name: the one with that name") {
    Selector sel = select("runc");
    sel.id = "9b4e";
    sel.name = "worker";
    CHECK(blade::cri::find_container(sel, roots).id == kRuncWorker);
  }
  SUBCASE("labels: all must match") {
    Selector sel = select("runc");
    sel.labels = {{"io.kubernetes.pod.name", "shop-7d9f"}, {"app", "shop-worker"}};
    CHECK(blade::cri::find_container(sel, roots).id == kRuncWorker);
    sel.labels = {{"io.kubernetes.pod.name", "shop-7d9f"}, {"app", "nope"}};
    CHECK_THROWS_AS(blade::cri::find_container(sel, roots), blade::sdk::NotFound);
  }
  SUBCASE("kubelet labels select a pod's containers; two match: 400") {
    Selector sel = select("runc");
    sel.labels = {{"io.kubernetes.pod.name", "shop-7d9f"}, {"io.kubernetes.pod.namespace", "prod"}};
    auto msg =
        error_of<blade::sdk::InvalidArgument>([&] { blade::cri::find_container(sel, roots); });
    CHECK(msg.find("matches 2 containers") != std::string::npos);
    sel.labels.emplace_back("io.kubernetes.container.name", "web");
    CHECK(blade::cri::find_container(sel, roots).id == kRuncWeb);
  }
  SUBCASE("an annotation only in the bundle's config.json is seen too") {
    fs::path config = dir.path() / "runc/bundles" / kRuncWorker / "config.json";
    auto doc = nlohmann::json::parse(blade::test::read_text(config));
    doc["annotations"]["only.in.bundle"] = "yes";
    std::ofstream(config) << doc.dump();
    Selector sel = select("runc");
    sel.labels = {{"only.in.bundle", "yes"}};
    CHECK(blade::cri::find_container(sel, roots).id == kRuncWorker);
  }
  SUBCASE("nothing matches: 404 naming what was tried") {
    Selector sel = select("runc");
    sel.name = "db";
    auto msg = error_of<blade::sdk::NotFound>([&] { blade::cri::find_container(sel, roots); });
    CHECK(msg.find("container-name db") != std::string::npos);
    CHECK(msg.find("runc: 2 running containers in " + roots.runc_root + ", 0 matched") !=
          std::string::npos);
  }
  SUBCASE("find_by_id: the exact id only; a deleted one is nullopt") {
    auto c = blade::cri::find_by_id("runc", kRuncWeb, "", roots);
    REQUIRE(c.has_value());
    CHECK(c->init_pid == web.init().pid);
    CHECK_FALSE(blade::cri::find_by_id("runc", "9b4e1c", "", roots).has_value());
    fs::remove_all(dir.path() / "runc/root" / kRuncWeb);
    CHECK_FALSE(blade::cri::find_by_id("runc", kRuncWeb, "", roots).has_value());
    CHECK_THROWS_AS(blade::cri::find_by_id("runc", "../etc", "", roots),
                    blade::sdk::InvalidArgument);
  }
}

TEST_CASE("runc: a dead init and a reused pid are stale state, not containers") {
  TempDir dir("blade-cri-resolvers");
  FakeInit web, other;
  SUBCASE("dead pid") {
    stage("runc", dir.path() / "runc", {{kRuncWeb, web.init()}, {kRuncWorker, dead_init()}});
  }
  SUBCASE("a live pid with another start time") {
    stage("runc", dir.path() / "runc", {{kRuncWeb, web.init()}, {kRuncWorker, other.reused()}});
  }
  const RuntimeRoots roots = roots_in(dir.path());
  auto resolvers = blade::cri::make_resolvers(select("runc"), roots);
  REQUIRE(resolvers.size() == 1);
  auto listed = resolvers[0]->list();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].id == kRuncWeb);
  // The prefix both share is no longer ambiguous.
  Selector sel = select("runc");
  sel.id = "9b4e";
  CHECK(blade::cri::find_container(sel, roots).id == kRuncWeb);
  CHECK_FALSE(blade::cri::find_by_id("runc", kRuncWorker, "", roots).has_value());
}

TEST_CASE("containerd: task dirs in a namespace, kubelet labels from the CRI annotations") {
  TempDir dir("blade-cri-resolvers");
  FakeInit k8s, other_ns;
  stage("containerd", dir.path() / "containerd",
        {{kCtdK8s, k8s.init()}, {kCtdDefault, other_ns.init()}});
  const RuntimeRoots roots = roots_in(dir.path());

  SUBCASE("by id prefix, in k8s.io (the default namespace)") {
    Selector sel = select("containerd");
    sel.id = "3f8a";
    Container c = blade::cri::find_container(sel, roots);
    CHECK(c.runtime == "containerd");
    CHECK(c.id == kCtdK8s);
    CHECK(c.ns == "k8s.io");
    CHECK(c.init_pid == k8s.init().pid);
    CHECK(c.init_start == k8s.init().start);
    CHECK(c.name == "web");
    CHECK(c.bundle == roots.containerd_state + "/io.containerd.runtime.v2.task/k8s.io/" + kCtdK8s);
  }
  SUBCASE("by the kubelet labels, derived from io.kubernetes.cri.* annotations") {
    Selector sel = select("containerd");
    sel.labels = {{"io.kubernetes.pod.name", "shop-7d9f"},
                  {"io.kubernetes.pod.namespace", "prod"},
                  {"io.kubernetes.container.name", "web"}};
    CHECK(blade::cri::find_container(sel, roots).id == kCtdK8s);
  }
  SUBCASE("a container of another namespace is not found; in its namespace it is") {
    Selector sel = select("containerd");
    sel.id = kCtdDefault;
    auto msg = error_of<blade::sdk::NotFound>([&] { blade::cri::find_container(sel, roots); });
    CHECK(msg.find("containerd: 1 running container in " + roots.containerd_state +
                   "/io.containerd.runtime.v2.task/k8s.io, 0 matched") != std::string::npos);
    sel.ns = "default";
    Container c = blade::cri::find_container(sel, roots);
    CHECK(c.ns == "default");
    CHECK(c.init_pid == other_ns.init().pid);
    CHECK_FALSE(blade::cri::find_by_id("containerd", kCtdDefault, "k8s.io", roots).has_value());
    CHECK(blade::cri::find_by_id("containerd", kCtdDefault, "default", roots).has_value());
  }
  SUBCASE("a namespace with no task yet: no containers, not an error") {
    auto resolvers = blade::cri::make_resolvers(
        [] {
          Selector s = select("containerd");
          s.ns = "moby";
          return s;
        }(),
        roots);
    CHECK(resolvers.at(0)->list().empty());
  }
}

TEST_CASE("containerd: the shim's runc start time unmasks a reused pid") {
  TempDir dir("blade-cri-resolvers");
  FakeInit k8s, other_ns;
  stage("containerd", dir.path() / "containerd",
        {{kCtdK8s, k8s.reused()}, {kCtdDefault, other_ns.init()}});
  auto resolvers = blade::cri::make_resolvers(select("containerd"), roots_in(dir.path()));
  CHECK(resolvers.at(0)->list().empty());
}

TEST_CASE(
    "CRI-O: labels from io.kubernetes.cri-o.Labels, sandboxes left out, start from state or runc") {
  TempDir dir("blade-cri-resolvers");
  FakeInit api, sandbox, sidecar;
  stage("crio", dir.path() / "crio",
        {{kCrioApi, api.init()}, {kCrioSandbox, sandbox.init()}, {kCrioSidecar, sidecar.init()}});
  const RuntimeRoots roots = roots_in(dir.path());

  auto listed = blade::cri::make_resolvers(select("cri-o"), roots).at(0)->list();
  REQUIRE(listed.size() == 2);  // the pause container is not one
  Selector sel = select("cri-o");
  sel.labels = {{"io.kubernetes.pod.name", "cart-5c8b"}, {"io.kubernetes.container.name", "api"}};
  Container c = blade::cri::find_container(sel, roots);
  CHECK(c.runtime == "cri-o");
  CHECK(c.id == kCrioApi);
  CHECK(c.name == "api");
  CHECK(c.init_pid == api.init().pid);
  CHECK(c.init_start == api.init().start);
  CHECK(c.labels.at("app") == "cart");
  CHECK(c.labels.at("io.kubernetes.cri-o.ContainerType") == "container");
  // No initPid in its state: conmon's pidfile, checked against runc's start.
  sel = select("cri-o");
  sel.name = "sidecar";
  CHECK(blade::cri::find_container(sel, roots).init_pid == sidecar.init().pid);
  // The whole pod: two workload containers, 400.
  sel = select("cri-o");
  sel.labels = {{"io.kubernetes.pod.name", "cart-5c8b"}};
  auto msg = error_of<blade::sdk::InvalidArgument>([&] { blade::cri::find_container(sel, roots); });
  CHECK(msg.find(kCrioApi) != std::string::npos);
  CHECK(msg.find(kCrioSidecar) != std::string::npos);
  CHECK(msg.find(kCrioSandbox) == std::string::npos);
}

TEST_CASE("CRI-O's container is also in runc's root: one container, reported as CRI-O's") {
  TempDir dir("blade-cri-resolvers");
  FakeInit api, sandbox, sidecar;
  stage("crio", dir.path() / "crio",
        {{kCrioApi, api.init()}, {kCrioSandbox, sandbox.init()}, {kCrioSidecar, sidecar.init()}});
  RuntimeRoots roots = roots_in(dir.path());
  roots.runc_root = roots.crio_runc_root;  // CRI-O runs runc with runc's default root
  Selector sel;                            // every runtime
  sel.id = kCrioSidecar.substr(0, 8);
  Container c = blade::cri::find_container(sel, roots);
  CHECK(c.runtime == "cri-o");
  CHECK(c.init_pid == sidecar.init().pid);
  // runc alone lists it too: the same process, seen twice above.
  sel.runtime = "runc";
  CHECK(blade::cri::find_container(sel, roots).init_pid == sidecar.init().pid);
}

TEST_CASE("CRI-O: a recorded initStartTime that is not the pid's now is stale") {
  TempDir dir("blade-cri-resolvers");
  FakeInit api, sandbox, sidecar;
  stage(
      "crio", dir.path() / "crio",
      {{kCrioApi, api.reused()}, {kCrioSandbox, sandbox.init()}, {kCrioSidecar, sidecar.reused()}});
  CHECK(blade::cri::make_resolvers(select("cri-o"), roots_in(dir.path())).at(0)->list().empty());
}

TEST_CASE("docker: the Engine API over a UNIX socket") {
  TempDir dir("blade-cri-resolvers");
  FakeInit web, pod, redis;
  stage("docker", dir.path() / "docker",
        {{kDockerWeb, web.init()}, {kDockerPod, pod.init()}, {kDockerRedis, redis.init()}});
  const RuntimeRoots roots = roots_in(dir.path());
  FakeDocker dockerd(roots.docker_socket, dir.path() / "docker");

  SUBCASE("by name (parse_selector drops a leading '/')") {
    Selector sel = select("docker");
    sel.name = "redis";
    Container c = blade::cri::find_container(sel, roots);
    CHECK(c.runtime == "docker");
    CHECK(c.id == kDockerRedis);
    CHECK(c.name == "redis");
    CHECK(c.init_pid == redis.init().pid);
    CHECK(c.init_start == redis.init().start);
    CHECK(c.labels.at("app") == "cache");
  }
  SUBCASE(
      "by the kubelet container name of a cri-dockerd container; its pause container left out") {
    Selector sel = select("docker");
    sel.name = "web";
    CHECK(blade::cri::find_container(sel, roots).id == kDockerWeb);
    sel = select("docker");
    sel.labels = {{"io.kubernetes.pod.name", "shop-7d9f"}};
    CHECK(blade::cri::find_container(sel, roots).id == kDockerWeb);
    // The label filter went to dockerd, with the status filter.
    auto sent = dockerd.filters().back();
    CHECK(sent["label"] == nlohmann::json::array({"io.kubernetes.pod.name=shop-7d9f"}));
    CHECK(sent["status"] == nlohmann::json::array({"running"}));
  }
  SUBCASE("by id prefix; find_by_id takes only the exact id") {
    Selector sel = select("docker");
    sel.id = "c3e5";
    CHECK(blade::cri::find_container(sel, roots).id == kDockerRedis);
    CHECK(blade::cri::find_by_id("docker", kDockerRedis, "", roots).has_value());
    CHECK_FALSE(blade::cri::find_by_id("docker", "c3e5", "", roots).has_value());
    CHECK_FALSE(blade::cri::find_by_id("docker", "0000", "", roots).has_value());
  }
  SUBCASE("nothing matches: 404 saying how many dockerd listed") {
    Selector sel = select("docker");
    sel.name = "db";
    auto msg = error_of<blade::sdk::NotFound>([&] { blade::cri::find_container(sel, roots); });
    CHECK(msg.find("docker: 3 running containers in " + roots.docker_socket + ", 0 matched") !=
          std::string::npos);
  }
}

TEST_CASE("docker: a container whose pid is gone is not running") {
  TempDir dir("blade-cri-resolvers");
  FakeInit web, pod;
  stage("docker", dir.path() / "docker",
        {{kDockerWeb, web.init()}, {kDockerPod, pod.init()}, {kDockerRedis, dead_init()}});
  const RuntimeRoots roots = roots_in(dir.path());
  FakeDocker dockerd(roots.docker_socket, dir.path() / "docker");
  Selector sel = select("docker");
  sel.name = "redis";
  CHECK_THROWS_AS(blade::cri::find_container(sel, roots), blade::sdk::NotFound);
  CHECK_FALSE(blade::cri::find_by_id("docker", kDockerRedis, "", roots).has_value());
}

TEST_CASE("every runtime tried: one found among them; none found names each and why") {
  TempDir dir("blade-cri-resolvers");
  FakeInit web, worker, k8s, other_ns;
  stage("runc", dir.path() / "runc", {{kRuncWeb, web.init()}, {kRuncWorker, worker.init()}});
  stage("containerd", dir.path() / "containerd",
        {{kCtdK8s, k8s.init()}, {kCtdDefault, other_ns.init()}});
  const RuntimeRoots roots = roots_in(dir.path());
  DeafSocket deaf(roots.docker_socket);

  Selector sel;  // no container-runtime
  sel.id = "3f8a2c";
  CHECK(blade::cri::find_container(sel, roots).runtime == "containerd");

  // "web" in pod shop-7d9f/prod is a runc container and a containerd one.
  sel = Selector();
  sel.labels = {{"io.kubernetes.pod.name", "shop-7d9f"}, {"io.kubernetes.container.name", "web"}};
  auto both =
      error_of<blade::sdk::InvalidArgument>([&] { blade::cri::find_container(sel, roots); });
  CHECK(both.find("runc " + kRuncWeb) != std::string::npos);
  CHECK(both.find("containerd " + kCtdK8s + " in namespace k8s.io") != std::string::npos);

  sel = Selector();
  sel.name = "db";
  auto msg = error_of<blade::sdk::NotFound>([&] { blade::cri::find_container(sel, roots); });
  INFO(msg);
  CHECK(msg.find("runc: 2 running containers in " + roots.runc_root + ", 0 matched") !=
        std::string::npos);
  CHECK(msg.find("containerd: 1 running container in ") != std::string::npos);
  CHECK(msg.find("cri-o: no state in " + roots.crio_storage) != std::string::npos);
  CHECK(msg.find("docker: " + roots.docker_socket + ": Connection refused") != std::string::npos);

  // A runtime that does not answer: Unavailable, for destroy to tell apart
  // from a deleted container.
  CHECK_THROWS_AS(blade::cri::find_by_id("docker", kDockerRedis, "", roots), Unavailable);
  CHECK_THROWS_AS(blade::cri::find_by_id("cri-o", kCrioApi, "", roots), Unavailable);
}

TEST_CASE("nothing is left behind: the staged copy, the fake inits, the socket") {
  fs::path staged, socket;
  Init init;
  {
    TempDir dir("blade-cri-resolvers");
    FakeInit web, pod, redis;
    init = redis.init();
    stage("docker", dir.path() / "docker",
          {{kDockerWeb, web.init()}, {kDockerPod, pod.init()}, {kDockerRedis, init}});
    staged = dir.path();
    socket = roots_in(dir.path()).docker_socket;
    FakeDocker dockerd(socket, dir.path() / "docker");
    Selector sel = select("docker");
    sel.name = "redis";
    CHECK(blade::cri::find_container(sel, roots_in(dir.path())).init_pid == init.pid);
  }
  CHECK_FALSE(fs::exists(socket));
  CHECK_FALSE(fs::exists(staged));
  CHECK_FALSE(blade::plugins::proc::start_time_of(init.pid).has_value());
}

TEST_CASE("no selector flag: 400 naming the three") {
  auto msg = error_of<blade::sdk::InvalidArgument>(
      [] { blade::cri::find_container(Selector(), RuntimeRoots()); });
  CHECK(msg.find("container-id") != std::string::npos);
  CHECK(msg.find("container-name") != std::string::npos);
  CHECK(msg.find("container-label-selector") != std::string::npos);
}

TEST_CASE("parse_selector: the container flags, and a field-named 400 for a bad one") {
  Selector s =
      parse({{"container-id", "9b4e"},
             {"container-name", "/redis"},
             {"container-label-selector", "app=shop, io.kubernetes.pod.namespace = prod,empty="},
             {"container-runtime", "containerd"},
             {"container-namespace", "default"},
             {"cri-endpoint", "unix:///tmp/ctd/containerd.sock"}});
  CHECK(s.id == "9b4e");
  CHECK(s.name == "redis");
  REQUIRE(s.labels.size() == 3);
  CHECK(s.labels[1] == std::pair<std::string, std::string>("io.kubernetes.pod.namespace", "prod"));
  CHECK(s.labels[2] == std::pair<std::string, std::string>("empty", ""));
  CHECK(s.runtime == "containerd");
  CHECK(s.ns == "default");
  CHECK(s.endpoint == "/tmp/ctd/containerd.sock");
  CHECK(blade::cri::effective_roots(s, RuntimeRoots()).containerd_state == "/tmp/ctd");

  Selector defaults = parse({{"container-name", "web"}});
  CHECK(defaults.ns == "k8s.io");
  CHECK(defaults.runtime.empty());
  CHECK(blade::cri::make_resolvers(defaults, RuntimeRoots()).size() == 4);

  Selector crun = parse({{"container-id", "abc"}, {"container-runtime", "crun"}});
  CHECK(crun.runtime == "runc");
  CHECK(blade::cri::effective_roots(crun, RuntimeRoots()).runc_root == "/run/crun");

  Selector docker = parse(
      {{"container-id", "abc"}, {"container-runtime", "docker"}, {"cri-endpoint", "/x/d.sock"}});
  CHECK(blade::cri::effective_roots(docker, RuntimeRoots()).docker_socket == "/x/d.sock");

  auto bad = [](std::vector<std::pair<std::string, std::string>> flags) {
    return error_of<blade::sdk::InvalidArgument>([&] { parse(std::move(flags)); });
  };
  CHECK(bad({{"container-label-selector", "app"}}).starts_with("container-label-selector"));
  CHECK(bad({{"container-label-selector", "a=b,,c=d"}}).starts_with("container-label-selector"));
  CHECK(bad({{"container-label-selector", "=v"}}).starts_with("container-label-selector"));
  CHECK(bad({{"container-label-selector", " =v"}}).starts_with("container-label-selector"));
  CHECK(
      bad({{"container-id", "x"}, {"container-runtime", "lxc"}}).starts_with("container-runtime"));
  CHECK(bad({{"container-id", "../../etc"}}).starts_with("container-id"));
  CHECK(bad({{"container-id", "x"}, {"container-namespace", "k8s.io/.."}})
            .starts_with("container-namespace"));
  CHECK(bad({{"container-id", "x"}, {"cri-endpoint", "/run/docker.sock"}})
            .starts_with("cri-endpoint"));
  CHECK(bad({{"container-id", "x"}, {"container-state-root", "/run/runc"}})
            .starts_with("container-state-root"));
  CHECK(bad({{"container-id", "x"}, {"container-runtime", "runc"}, {"cri-endpoint", "/a"}})
            .starts_with("cri-endpoint"));
  CHECK(
      bad({{"container-id", "x"}, {"container-runtime", "docker"}, {"cri-endpoint", "docker.sock"}})
          .starts_with("cri-endpoint"));
  CHECK(
      bad({{"container-id", "x"}, {"container-runtime", "docker"}, {"container-state-root", "/a"}})
          .starts_with("container-state-root"));
}
