// A private containerd for tests, and containers run in it, both RAII: the
// daemon lives under its own temp dir (root, state, socket, config) and is
// stopped, unmounted and removed with everything it made when the object
// goes; a container is killed and deleted (task, container, snapshot, its
// cgroups) when its object goes.
//
// What containerd 1.6 (Debian 12) leaves on disk for a container `ID` in
// namespace `NS`, as seen here with `ctr run -d` (runtime io.containerd.runc.v2):
//   <state>/io.containerd.runtime.v2.task/NS/ID/   the task dir = the OCI bundle
//     config.json       the OCI spec: annotations (from `ctr run --annotation`,
//                       and what containerd's CRI plugin writes:
//                       io.kubernetes.cri.container-name, -sandbox-name, ...),
//                       linux.cgroupsPath, linux.namespaces
//     init.pid          the init's host pid, decimal, no newline
//     rootfs/           the container's root (an overlay mount while it runs)
//     address           the shim's ttrpc socket (unix:///run/containerd/s/<hash>:
//                       under /run/containerd/s whatever --state says)
//     options.json      the runc shim's options: {"root":"<runc root>"} when
//                       one was given (ctr run --runc-root, or the CRI
//                       runtime option Root), {} for the shim's default
//     runtime, shim-binary-path, log, log.json
//     work -> <root>/io.containerd.runtime.v2.task/NS/ID
//   <runc root>/NS/ID/state.json   the shim's runc state: init_process_pid,
//                       init_process_start (/proc/<pid>/stat field 22),
//                       config.labels ["k=v" of each annotation,
//                       "bundle=<task dir>"], cgroup_paths
// The runc root is the shim's default /run/containerd/runc, NOT under
// --state: a private --state does not move it. These tests pass
// `ctr run --runc-root <dir>/runc` (runtime option Root, then named in the
// task dir's options.json), so nothing of theirs lands in
// /run/containerd/runc.
// Labels: containerd keeps a container's labels in its metadata database
// (bolt, under --root), and no file of the task dir or the runc state holds
// them as such. What is on disk is the OCI annotations. A kubelet-made
// container (through containerd's CRI plugin) has the kubelet's CRI labels
// (io.kubernetes.pod.name, .pod.namespace, .container.name) in metadata only,
// and containerd's CRI annotations in config.json
// (io.kubernetes.cri.container-type, -container-name, -sandbox-id,
// -sandbox-name, -sandbox-namespace). `ctr run --label k=v` (ctr 1.6) sets
// the label AND an annotation k=v, so giving it the kubelet's keys would put
// on disk what a kubelet-made container does not have there.
// ContainerdContainer therefore writes by default only what containerd's CRI
// plugin writes (the io.kubernetes.cri.* annotations, via --annotation): the
// cri plugin's containerd resolver reads the annotations and derives the
// kubelet's keys from them, as it must on a real node.
#pragma once

#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "child_process.hpp"
#include "eventually.hpp"
#include "file_text.hpp"
#include "temp_dir.hpp"

namespace blade::test {

// True when /sys/fs/cgroup is the cgroup v2 hierarchy itself.
inline bool cgroup_v2_only() {
  return std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers");
}

// Where runc makes a container's cgroup `path` ("/parent/id"): one dir per
// hierarchy under /sys/fs/cgroup on v1 (cpu, memory, ..., the named
// systemd one and the empty v2 "unified" mount), one dir on v2.
inline std::vector<std::filesystem::path> cgroup_dirs(const std::string &path) {
  if (cgroup_v2_only()) return {std::filesystem::path("/sys/fs/cgroup") / path.substr(1)};
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (const auto &e : std::filesystem::directory_iterator("/sys/fs/cgroup", ec))
    if (e.is_directory()) out.push_back(e.path() / path.substr(1));
  return out;
}

// Runs `argv` (a full path first, no shell), its output appended to `log`;
// its exit code, or -1 if it ran longer than `timeout` (it is killed then).
inline int run_tool(const std::vector<std::string> &argv, const std::filesystem::path &log,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  {
    std::ofstream out(log, std::ios::app);
    out << "$";
    for (const auto &a : argv)
      out << ' ' << a;
    out << '\n';
  }
  ChildProcess p(argv, {}, log.string());
  const auto code = p.exit_code(timeout);
  return code ? *code : -1;
}

// The mount points under `dir` (from /proc/self/mountinfo), deepest first.
inline std::vector<std::string> mounts_under(const std::filesystem::path &dir) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  const std::string prefix = dir.string() + "/";
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    if (point.rfind(prefix, 0) == 0) out.push_back(point);
  }
  std::sort(out.begin(), out.end(),
            [](const auto &a, const auto &b) { return a.size() > b.size(); });
  return out;
}

// The pids whose command line holds `arg` as one whole argument.
inline std::vector<pid_t> pids_with_arg(const std::string &arg) {
  std::vector<pid_t> out;
  for (const auto &e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string cmdline = read_text(e.path() / "cmdline");
    std::istringstream args(cmdline);
    std::string a;
    while (std::getline(args, a, '\0'))
      if (a == arg) {
        out.push_back(std::stoi(name));
        break;
      }
  }
  return out;
}

// A container id as containerd's CRI plugin makes them (64 hex digits),
// random so that runs never meet each other's leftovers.
inline std::string random_container_id() {
  std::random_device rd;
  std::mt19937_64 gen(rd());
  std::string id;
  for (int i = 0; i < 64; ++i)
    id += "0123456789abcdef"[gen() % 16];
  return id;
}

class ContainerdDaemon {
 public:
  ContainerdDaemon() : dir_("blade-containerd") {
    if (std::string(BLADE_CONTAINERD_PATH).empty() || std::string(BLADE_CTR_PATH).empty())
      throw std::runtime_error(
          "containerd and ctr not found at build time: install the Debian package containerd "
          "(tools/dev/install-deps.sh) and reconfigure");
    std::filesystem::create_directories(runc_root());
    // Only what `ctr image import` and `ctr run` need: the CRI plugin (a
    // kubelet's server, CNI, a sandbox image to pull) is not needed to run
    // containers through containerd's own API.
    std::ofstream(dir_ / "config.toml") << "version = 2\n"
                                           "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n";
    process_.emplace(
        std::vector<std::string>{BLADE_CONTAINERD_PATH, "--root", root(), "--state", state(),
                                 "--address", socket(), "--config", dir_ / "config.toml"},
        std::vector<std::string>{}, log_file());
    // Up when its socket answers a real request, not merely exists.
    const bool up = eventually(
        [&] {
          if (process_->exit_code(std::chrono::milliseconds(0))) return false;
          return std::filesystem::exists(socket()) &&
                 run_tool({BLADE_CTR_PATH, "-a", socket(), "version"}, dir_ / "ctr.log") == 0;
        },
        std::chrono::seconds(20));
    if (!up) {
      const std::string why =
          "containerd did not answer on " + socket() + ": " + read_text(log_file());
      stop();
      throw std::runtime_error(why);
    }
  }
  ~ContainerdDaemon() { stop(); }
  ContainerdDaemon(const ContainerdDaemon &) = delete;
  ContainerdDaemon &operator=(const ContainerdDaemon &) = delete;

  std::string root() const { return dir_ / "root"; }
  std::string state() const { return dir_ / "state"; }
  std::string socket() const { return dir_ / "containerd.sock"; }
  // The runc root its shims are told to use (ctr run --runc-root).
  std::string runc_root() const { return dir_ / "runc"; }
  std::string fifo_dir() const { return dir_ / "fifo"; }
  // The cgroup its containers are made under ("/blade-<its dir's name>", in
  // place of containerd's default /<ns>): its own, so removing it touches
  // nothing another test made.
  std::string cgroup_parent() const { return "/blade-" + dir_.path().filename().string(); }
  const std::filesystem::path &dir() const { return dir_.path(); }
  std::filesystem::path log_file() const { return dir_ / "containerd.log"; }
  std::filesystem::path ctr_log() const { return dir_ / "ctr.log"; }
  pid_t pid() const { return process_ ? process_->pid() : -1; }

  // `ctr -a <socket> -n <ns> args...`; its exit code (output in ctr_log()).
  int ctr(const std::string &ns, const std::vector<std::string> &args) const {
    std::vector<std::string> argv{BLADE_CTR_PATH, "-a", socket(), "-n", ns};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_tool(argv, ctr_log());
  }

  // Stops everything it started: containers a failed test left (runc delete
  // -f in the private runc root, which also removes their cgroups), the
  // daemon (SIGTERM, then SIGKILL after 5 s), the shims serving this socket,
  // the mounts under its dir, its cgroup parent; the dir itself goes with
  // the object. Idempotent.
  void stop() {
    std::error_code ec;
    for (const auto &ns : std::filesystem::directory_iterator(runc_root(), ec))
      for (const auto &c : std::filesystem::directory_iterator(ns.path(), ec))
        run_tool({BLADE_RUNC_PATH, "--root", ns.path(), "delete", "-f", c.path().filename()},
                 ctr_log());
    if (process_) {
      process_->signal(SIGTERM);
      if (!process_->wait_for(std::chrono::seconds(5))) {
        process_->signal(SIGKILL);
        process_->wait_for(std::chrono::seconds(5));
      }
      process_.reset();
    }
    // A shim outlives containerd by design (it holds the container); it is
    // this daemon's only if its -address is this socket. Killed, it leaves
    // its ttrpc socket behind (in /run/containerd/s, whatever --state says);
    // the task dir's `address` names it.
    const auto shims = pids_with_arg(socket());
    for (pid_t shim : shims)
      ::kill(shim, SIGKILL);
    eventually([&] { return pids_with_arg(socket()).empty(); }, std::chrono::seconds(5));
    if (!shims.empty()) {
      const std::filesystem::path tasks =
          std::filesystem::path(state()) / "io.containerd.runtime.v2.task";
      for (const auto &ns : std::filesystem::directory_iterator(tasks, ec))
        for (const auto &task : std::filesystem::directory_iterator(ns.path(), ec)) {
          const std::string address = read_text(task.path() / "address");
          if (address.rfind("unix://", 0) == 0) ::unlink(address.substr(7).c_str());
        }
    }
    for (const auto &m : mounts_under(dir_.path()))
      ::umount2(m.c_str(), MNT_DETACH);
    for (const auto &dir : cgroup_dirs(cgroup_parent()))
      ::rmdir(dir.c_str());  // empty by now: runc delete removed what was in it
  }

 private:
  TempDir dir_;
  std::optional<ChildProcess> process_;
};

// What a container is run with. The defaults make it look kubelet-made, as
// containerd's CRI plugin leaves one on disk: pod web-0 in Kubernetes
// namespace default, container web.
struct ContainerdContainerOptions {
  std::string ns = "k8s.io";  // containerd's namespace
  std::string image;
  std::string id;
  // OCI annotations (ctr run --annotation): those containerd's CRI plugin
  // writes into config.json for a kubelet's container.
  std::map<std::string, std::string> annotations{
      {"io.kubernetes.cri.container-type", "container"},
      {"io.kubernetes.cri.container-name", "web"},
      {"io.kubernetes.cri.sandbox-id", "0123456789abcdef0123456789abcdef"},
      {"io.kubernetes.cri.sandbox-name", "web-0"},
      {"io.kubernetes.cri.sandbox-namespace", "default"}};
  // containerd labels (ctr run --label; ctr 1.6 also makes each an
  // annotation). None by default: see the top of this file.
  std::map<std::string, std::string> labels;
  std::string cpus;            // ctr run --cpus (e.g. "0.5"); empty: no quota
  long long memory_limit = 0;  // bytes; 0: none
  std::vector<std::string> args{"sleep", "100000"};
};

class ContainerdContainer {
 public:
  ContainerdContainer(const ContainerdDaemon &d, ContainerdContainerOptions o)
      : d_(d), o_(std::move(o)) {
    std::vector<std::string> args{"run",          "-d",       "--null-io",   "--runc-root",
                                  d_.runc_root(), "--cgroup", cgroups_path()};
    for (const auto &[k, v] : o_.labels)
      args.insert(args.end(), {"--label", k + "=" + v});
    for (const auto &[k, v] : o_.annotations)
      args.insert(args.end(), {"--annotation", k + "=" + v});
    if (!o_.cpus.empty()) args.insert(args.end(), {"--cpus", o_.cpus});
    if (o_.memory_limit > 0)
      args.insert(args.end(), {"--memory-limit", std::to_string(o_.memory_limit)});
    args.push_back(o_.image);
    args.push_back(o_.id);
    args.insert(args.end(), o_.args.begin(), o_.args.end());
    if (d_.ctr(o_.ns, args) != 0) {
      const std::string why = "ctr run " + o_.id + " failed: " + read_text(d_.ctr_log());
      remove();
      throw std::runtime_error(why);
    }
  }
  ~ContainerdContainer() { remove(); }
  ContainerdContainer(const ContainerdContainer &) = delete;
  ContainerdContainer &operator=(const ContainerdContainer &) = delete;

  const std::string &id() const { return o_.id; }
  const std::string &ns() const { return o_.ns; }
  std::string cgroups_path() const { return d_.cgroup_parent() + "/" + o_.id; }
  std::filesystem::path task_dir() const {
    return std::filesystem::path(d_.state()) / "io.containerd.runtime.v2.task" / o_.ns / o_.id;
  }
  std::filesystem::path runc_state() const {
    return std::filesystem::path(d_.runc_root()) / o_.ns / o_.id / "state.json";
  }
  // Its cgroup dir for `controller` (e.g. "cpu", "memory"): that v1
  // hierarchy's, or the one v2 dir.
  std::filesystem::path cgroup_dir(const std::string &controller) const {
    const std::filesystem::path base("/sys/fs/cgroup");
    const std::string rel = cgroups_path().substr(1);
    return cgroup_v2_only() ? base / rel : base / controller / rel;
  }
  // The init's host pid, as the task dir says; 0 when it has none.
  pid_t init_pid() const {
    const std::string text = read_text(task_dir() / "init.pid");
    return text.empty() ? 0 : std::stoi(text);
  }

  // Starts `argv` inside the container (ctr task exec -d) and returns its
  // host pid, found among the container's cgroup's processes by its exact
  // command line; 0 if it did not show up.
  pid_t exec_detached(const std::string &exec_id, const std::vector<std::string> &argv) const {
    std::vector<std::string> args{"task",        "exec",      "-d",    "--fifo-dir",
                                  d_.fifo_dir(), "--exec-id", exec_id, o_.id};
    args.insert(args.end(), argv.begin(), argv.end());
    if (d_.ctr(o_.ns, args) != 0) return 0;
    std::string want;
    for (const auto &a : argv)
      want += a + '\0';
    pid_t found = 0;
    eventually([&] {
      std::ifstream procs(cgroup_dir("pids") / "cgroup.procs");
      for (pid_t p = 0; procs >> p;)
        if (read_text("/proc/" + std::to_string(p) + "/cmdline") == want) found = p;
      return found != 0;
    });
    return found;
  }

  // Kills and deletes it: task (SIGKILL, then delete once it has exited),
  // container (and its snapshot), then its cgroup parent if empty.
  // Idempotent; also after a failed start.
  void remove() {
    if (removed_) return;
    removed_ = true;
    if (std::filesystem::exists(task_dir())) {
      d_.ctr(o_.ns, {"task", "kill", "-s", "SIGKILL", o_.id});
      eventually(
          [&] {
            return d_.ctr(o_.ns, {"task", "delete", o_.id}) == 0;
          },
          std::chrono::seconds(10));
    }
    d_.ctr(o_.ns, {"container", "delete", o_.id});
    // runc removes them; in case it did not (the parent is the daemon's).
    for (const auto &dir : cgroup_dirs(cgroups_path()))
      ::rmdir(dir.c_str());
  }

 private:
  const ContainerdDaemon &d_;
  ContainerdContainerOptions o_;
  bool removed_ = false;
};

// An image imported into a ContainerdDaemon from an OCI layout tarball
// (ctr image import), removed again (ctr image rm) when the object goes.
class ContainerdImage {
 public:
  ContainerdImage(const ContainerdDaemon &d, std::string ns, const std::filesystem::path &tar,
                  std::string ref)
      : d_(d), ns_(std::move(ns)), ref_(std::move(ref)) {
    if (d_.ctr(ns_, {"image", "import", tar}) != 0)
      throw std::runtime_error("ctr image import " + tar.string() +
                               " failed: " + read_text(d_.ctr_log()));
  }
  ~ContainerdImage() { d_.ctr(ns_, {"image", "rm", ref_}); }
  ContainerdImage(const ContainerdImage &) = delete;
  ContainerdImage &operator=(const ContainerdImage &) = delete;

  const std::string &ref() const { return ref_; }

 private:
  const ContainerdDaemon &d_;
  std::string ns_;
  std::string ref_;
};

}  // namespace blade::test
