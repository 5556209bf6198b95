// A real runc container for the tests of faults inside containers: a busybox
// rootfs the test builds under a temp dir, an OCI config.json written whole,
// and `runc run -d` against a private runc root (so nothing lands in
// /run/runc). The container is killed and deleted, and its cgroups removed,
// when the object goes, also when a REQUIRE fails half way.
//
// Needs root, runc and busybox-static (tools/dev/install-deps.sh); a host
// without them fails the test with the reason, never skips it.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "eventually.hpp"
#include "file_text.hpp"
#include "temp_dir.hpp"

extern char **environ;

namespace blade::test {

// The statically linked busybox of Debian's busybox-static: the whole
// userland of the test containers (a dynamic one would need its libraries
// in the rootfs).
inline const std::filesystem::path kBusybox = "/bin/busybox";

// The applets the tests run inside (each a symlink to busybox, which picks
// the applet by the name it is called by).
inline const std::vector<std::string> kBusyboxApplets = {
    "sh", "sleep", "cat", "ls", "ip", "nc", "echo", "tail", "true", "ps"};

// The first executable `name` on PATH or in the sbin dirs (runc is in
// /usr/sbin, which a test's PATH may lack); empty when there is none.
inline std::filesystem::path find_program(const std::string &name) {
  std::string dirs = ::getenv("PATH") ? ::getenv("PATH") : "";
  dirs += ":/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin";
  std::istringstream in(dirs);
  std::string dir;
  while (std::getline(in, dir, ':')) {
    if (dir.empty()) continue;
    const auto p = std::filesystem::path(dir) / name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return {};
}

// A minimal root filesystem: busybox and its applet links in /bin, the
// mount points runc mounts on (/proc, /sys, /dev), /tmp, and an /etc with
// hosts, passwd and group so the tools inside find what they look up.
inline void build_busybox_rootfs(const std::filesystem::path &rootfs,
                                 const std::vector<std::string> &applets = kBusyboxApplets) {
  namespace fs = std::filesystem;
  REQUIRE_MESSAGE(fs::is_regular_file(kBusybox),
                  kBusybox << " missing: install busybox-static (tools/dev/install-deps.sh)");
  for (const char *dir : {"bin", "proc", "sys", "dev", "tmp", "etc", "root"})
    fs::create_directories(rootfs / dir);
  fs::permissions(rootfs / "tmp", fs::perms(01777));
  fs::copy_file(kBusybox, rootfs / "bin" / "busybox");
  fs::permissions(rootfs / "bin" / "busybox", fs::perms(0755));
  for (const auto &applet : applets)
    fs::create_symlink("busybox", rootfs / "bin" / applet);
  const std::pair<const char *, const char *> etc[] = {
      {"hosts", "127.0.0.1 localhost\n::1 localhost\n"},
      {"passwd", "root:x:0:0:root:/root:/bin/sh\n"},
      {"group", "root:x:0:\n"},
  };
  for (const auto &[name, text] : etc)
    std::ofstream(rootfs / "etc" / name) << text;
}

// Runs `argv` (no shell) with stdin from /dev/null and stdout and stderr
// appended to `log`, for up to `timeout`. Its exit code, -signal when a
// signal ended it, or nullopt when it outran the timeout (it is then
// killed and reaped). stdin must not be the test's: `runc run -d` hands its
// stdio to the container, which would hold the test runner's pipes open.
inline std::optional<int> run_logged(const std::vector<std::string> &argv,
                                     const std::filesystem::path &log,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char *> args;
  for (const auto &a : argv)
    args.push_back(const_cast<char *>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int err = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return 127;
  const auto end = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= end) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

struct RuncOptions {
  // CFS quota in cpus (0.5: 50 ms of each 100 ms period); 0: no quota.
  double cpus = 0;
  // memory.limit in bytes; 0: no limit.
  std::int64_t memory_limit = 0;
  // OCI annotations; runc shows them as the container's labels, as the
  // kubelet's (through containerd or CRI-O) are.
  std::map<std::string, std::string> annotations = {
      {"io.kubernetes.pod.name", "blade-test-pod"},
      {"io.kubernetes.pod.namespace", "default"},
      {"io.kubernetes.container.name", "app"},
  };
  // Files put into the rootfs before the container starts: path inside
  // (absolute) -> content.
  std::map<std::string, std::string> files;
};

class RuncContainer {
 public:
  explicit RuncContainer(RuncOptions options = {}) : options_(std::move(options)) {
    namespace fs = std::filesystem;
    runc_ = find_program("runc");
    REQUIRE_MESSAGE(!runc_.empty(), "runc not found: install runc (tools/dev/install-deps.sh)");
    REQUIRE_MESSAGE(::geteuid() == 0, "runc containers need root");
    id_ = "blade-runc-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++);
    fs::create_directories(root());
    build_busybox_rootfs(rootfs());
    for (const auto &[path, text] : options_.files) {
      REQUIRE_MESSAGE(path.starts_with("/"), "files: not absolute: " << path);
      const fs::path p = rootfs() / path.substr(1);
      fs::create_directories(p.parent_path());
      std::ofstream(p, std::ios::binary) << text;
    }
    std::ofstream(bundle() / "config.json") << config().dump(2);
    teardown_.armed = this;  // from here on a failure still deletes the container
    const auto code = runc({"run", "-d", "--bundle", bundle().string(), id_});
    REQUIRE_MESSAGE(code == 0, "runc run failed: " << read_text(log()));
    const auto state = nlohmann::json::parse(read_text(root() / id_ / "state.json"));
    init_pid_ = state.at("init_process_pid").get<pid_t>();
    init_start_ = state.at("init_process_start").get<std::uint64_t>();
    // The init brings lo up, then becomes the idle process: once its comm
    // says so the container is ready.
    REQUIRE_MESSAGE(eventually([&] { return read_text(proc() / "comm") == "tail\n"; }),
                    "the container's init did not get ready: " << read_text(log()));
  }
  ~RuncContainer() = default;
  RuncContainer(const RuncContainer &) = delete;
  RuncContainer &operator=(const RuncContainer &) = delete;

  const std::string &id() const { return id_; }
  // The private runc root: what the cri plugin is told as the runc state root.
  std::filesystem::path root() const { return dir_ / "runc"; }
  std::filesystem::path bundle() const { return dir_.path(); }
  std::filesystem::path rootfs() const { return dir_ / "rootfs"; }
  // What runc wrote to stdout/stderr (and what the container's init did).
  std::filesystem::path log() const { return dir_ / "runc.log"; }
  const RuncOptions &options() const { return options_; }
  // The init's host pid and its start time (from runc's state).
  pid_t init_pid() const { return init_pid_; }
  std::uint64_t init_start() const { return init_start_; }
  std::filesystem::path proc() const { return "/proc/" + std::to_string(init_pid_); }

  // The host path of the container's cgroup in `controller`'s hierarchy
  // (v1: "cpu", "cpuacct", "memory" ...; on a v2 host any name gives the
  // unified dir), read from the init's /proc/<pid>/cgroup.
  std::filesystem::path cgroup_dir(const std::string &controller) const {
    if (cgroup_v2()) return "/sys/fs/cgroup" + cgroup_line_path(proc(), "");
    return std::filesystem::path("/sys/fs/cgroup") / controller /
           cgroup_line_path(proc(), controller).substr(1);
  }
  std::filesystem::path cgroup_file(const std::string &controller, const std::string &name) const {
    return cgroup_dir(controller) / name;
  }
  // The cpu time the container's cgroup has used, in ns (v1 cpuacct.usage,
  // v2 cpu.stat usage_usec).
  std::uint64_t cpu_usage_ns() const {
    if (!cgroup_v2()) return std::stoull(read_text(cgroup_file("cpuacct", "cpuacct.usage")));
    std::istringstream in(read_text(cgroup_file("cpu", "cpu.stat")));
    std::string key;
    std::uint64_t value = 0;
    while (in >> key >> value)
      if (key == "usage_usec") return value * 1000;
    FAIL("no usage_usec in " << cgroup_file("cpu", "cpu.stat"));
    return 0;
  }
  // The memory charged to the container's cgroup, in bytes (v1
  // memory.usage_in_bytes, v2 memory.current).
  std::uint64_t memory_usage() const {
    return std::stoull(read_text(cgroup_file(
        "memory", cgroup_v2() ? "memory.current" : "memory.usage_in_bytes")));
  }

  // Starts argv inside the container in the background (`runc exec -d`);
  // the host pid of the process.
  pid_t exec_detached(const std::vector<std::string> &argv) {
    const auto pid_file = dir_ / ("exec-" + std::to_string(++execs_) + ".pid");
    std::vector<std::string> args = {"exec", "-d", "--pid-file", pid_file.string(), id_};
    args.insert(args.end(), argv.begin(), argv.end());
    const auto code = runc(args);
    REQUIRE_MESSAGE(code == 0, "runc exec -d failed: " << read_text(log()));
    return std::stoi(read_text(pid_file));
  }

  // Runs argv inside the container and waits for it: its exit code (or
  // nullopt past `timeout`) and what it printed.
  struct Ran {
    std::optional<int> code;
    std::string output;
  };
  Ran exec(const std::vector<std::string> &argv,
           std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto out = dir_ / ("exec-" + std::to_string(++execs_) + ".log");
    std::vector<std::string> args = {runc_.string(), "--root", root().string(), "exec", id_};
    args.insert(args.end(), argv.begin(), argv.end());
    Ran ran;
    ran.code = run_logged(args, out, timeout);
    ran.output = read_text(out);
    return ran;
  }

  // Kills and deletes the container now (the test of a destroy after the
  // container went away); the destructor then has nothing left to do.
  void remove() { teardown_.run(); }

  // Whether runc still knows the container, and whether any of its cgroup
  // dirs still exists (read before remove(): the paths runc recorded).
  bool exists() const { return std::filesystem::exists(root() / id_ / "state.json"); }
  std::vector<std::filesystem::path> cgroup_paths() const {
    std::vector<std::filesystem::path> out;
    const auto state = nlohmann::json::parse(read_text(root() / id_ / "state.json"), nullptr, false);
    if (state.is_object() && state.contains("cgroup_paths"))
      for (const auto &[name, path] : state["cgroup_paths"].items())
        out.emplace_back(path.get<std::string>());
    return out;
  }

  static bool cgroup_v2() { return std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers"); }

 private:
  // The path of `controller`'s line in /proc/<pid>/cgroup ("" : the v2 line).
  static std::string cgroup_line_path(const std::filesystem::path &proc,
                                      const std::string &controller) {
    std::istringstream in(read_text(proc / "cgroup"));
    std::string line;
    while (std::getline(in, line)) {
      const auto a = line.find(':'), b = line.find(':', a + 1);
      if (a == std::string::npos || b == std::string::npos) continue;
      std::istringstream names(line.substr(a + 1, b - a - 1));
      std::string name;
      if (controller.empty() && line.substr(0, a) == "0" && b == a + 1) return line.substr(b + 1);
      while (std::getline(names, name, ','))
        if (name == controller) return line.substr(b + 1);
    }
    FAIL("no " << (controller.empty() ? "v2" : controller) << " line in " << proc / "cgroup");
    return {};
  }

  std::optional<int> runc(const std::vector<std::string> &args) {
    std::vector<std::string> argv = {runc_.string(), "--root", root().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_logged(argv, log());
  }

  // The OCI runtime config, written whole: the init brings lo up in its
  // private network namespace and then idles; the cgroup is
  // /blade-test/<id> with the quota and limit asked for.
  nlohmann::json config() const {
    using nlohmann::json;
    const json caps = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE",
                       "CAP_NET_ADMIN"};  // NET_ADMIN: `ip link set lo up`
    json resources = {{"devices", json::array({{{"allow", false}, {"access", "rwm"}}})}};
    if (options_.cpus > 0)
      resources["cpu"] = {{"quota", static_cast<std::int64_t>(options_.cpus * 100000)},
                          {"period", 100000}};
    if (options_.memory_limit > 0) resources["memory"] = {{"limit", options_.memory_limit}};
    json annotations = json::object();
    for (const auto &[k, v] : options_.annotations)
      annotations[k] = v;
    return {
        {"ociVersion", "1.0.2-dev"},
        {"process",
         {{"terminal", false},
          {"user", {{"uid", 0}, {"gid", 0}}},
          {"args", {"/bin/sh", "-c", "ip link set lo up && exec tail -f /dev/null"}},
          {"env", {"PATH=/bin"}},
          {"cwd", "/"},
          {"capabilities",
           {{"bounding", caps}, {"effective", caps}, {"permitted", caps}, {"ambient", caps}}},
          {"rlimits", {{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}}},
          {"noNewPrivileges", true}}},
        {"root", {{"path", "rootfs"}, {"readonly", false}}},
        {"hostname", "blade-test"},
        {"mounts",
         {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
          {{"destination", "/dev"},
           {"type", "tmpfs"},
           {"source", "tmpfs"},
           {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
          {{"destination", "/dev/pts"},
           {"type", "devpts"},
           {"source", "devpts"},
           {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}},
          {{"destination", "/dev/shm"},
           {"type", "tmpfs"},
           {"source", "shm"},
           {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
          {{"destination", "/sys"},
           {"type", "sysfs"},
           {"source", "sysfs"},
           {"options", {"nosuid", "noexec", "nodev", "ro"}}}}},
        {"annotations", annotations},
        {"linux",
         {{"cgroupsPath", "/blade-test/" + id_},
          {"resources", resources},
          {"namespaces",
           {{{"type", "pid"}},
            {{"type", "network"}},
            {{"type", "ipc"}},
            {{"type", "uts"}},
            {{"type", "mount"}}}},
          {"maskedPaths", {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"}},
          {"readonlyPaths",
           {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}}}},
    };
  }

  static int &counter() {
    static int n = 0;
    return n;
  }

  // Deletes the container when armed: kill, delete -f (which also removes
  // its cgroups, checked), then the shared /blade-test parent where it is
  // empty.
  struct Teardown {
    RuncContainer *armed = nullptr;
    void run() {
      if (!armed) return;
      RuncContainer &c = *armed;
      armed = nullptr;
      const auto cgroups = c.cgroup_paths();
      c.runc({"kill", c.id_, "KILL"});
      c.runc({"delete", "-f", c.id_});
      // A process a test left in the container's cgroup (a helper that
      // joined it) would keep runc from removing it: say so, without
      // throwing from a destructor.
      for (const auto &p : cgroups)
        CHECK_MESSAGE(!std::filesystem::exists(p), "runc left the cgroup " << p << ": "
                                                       << read_text(p / "cgroup.procs"));
      std::error_code ec;
      for (const auto &hierarchy : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
        std::filesystem::remove(hierarchy.path() / "blade-test" / c.id_, ec);
        std::filesystem::remove(hierarchy.path() / "blade-test", ec);  // fails while not empty
      }
      if (cgroup_v2()) std::filesystem::remove("/sys/fs/cgroup/blade-test", ec);
    }
    ~Teardown() { run(); }
  };

  RuncOptions options_;
  std::filesystem::path runc_;
  std::string id_;
  TempDir dir_{"runc-ctr"};
  pid_t init_pid_ = 0;
  std::uint64_t init_start_ = 0;
  int execs_ = 0;
  Teardown teardown_;  // last member: runs first, while dir_ still exists
};

}  // namespace blade::test
