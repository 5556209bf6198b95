#include "enter.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include <blade/plugin.hpp>

#include "../../../common/handles.hpp"
#include "../../../common/proc_reader.hpp"

namespace blade::cri {

using plugins::UniqueFd;

namespace {

std::string errno_text(int err) { return strerror(err); }

sdk::Error os_error(int err, const std::string &what) {
  const blade_status s = (err == EPERM || err == EACCES) ? BLADE_STATUS_PERMISSION_DENIED
                                                         : BLADE_STATUS_FAILED_PRECONDITION;
  return sdk::Error(s, what + ": " + errno_text(err));
}

struct Namespace {
  const char *name;  // under /proc/<pid>/ns
  int type;          // CLONE_NEW*
  UniqueFd fd;
};

// /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(const std::string &s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const std::string oct = s.substr(i + 1, 3);
      if (oct.size() == 3 && oct.find_first_not_of("01234567") == std::string::npos) {
        out += static_cast<char>(std::stoi(oct, nullptr, 8));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

struct CgroupMount {
  std::string root;        // the hierarchy's dir this mount shows
  std::string mountpoint;  // where
  bool v2 = false;
  std::vector<std::string> options;  // v1 super options: controllers, name=...
};

std::vector<CgroupMount> cgroup_mounts() {
  std::vector<CgroupMount> out;
  auto text = plugins::proc::detail::read_text("/proc/self/mountinfo");
  if (!text) throw sdk::FailedPrecondition("cannot read /proc/self/mountinfo");
  std::istringstream lines(*text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream f(line);
    std::vector<std::string> fields;
    for (std::string w; f >> w;)
      fields.push_back(w);
    std::size_t dash = 0;
    while (dash < fields.size() && fields[dash] != "-")
      ++dash;
    // ... root mountpoint ... - fstype source superoptions
    if (dash < 5 || dash + 3 >= fields.size()) continue;
    const std::string &type = fields[dash + 1];
    if (type != "cgroup" && type != "cgroup2") continue;
    CgroupMount m;
    m.root = unescape(fields[3]);
    m.mountpoint = unescape(fields[4]);
    m.v2 = type == "cgroup2";
    std::istringstream opts(fields[dash + 3]);
    for (std::string o; std::getline(opts, o, ',');)
      m.options.push_back(o);
    out.push_back(std::move(m));
  }
  return out;
}

bool has_all(const std::vector<std::string> &options, const std::string &controllers) {
  std::istringstream c(controllers);
  for (std::string one; std::getline(c, one, ',');) {
    bool found = false;
    for (const auto &o : options)
      found = found || o == one;
    if (!found) return false;
  }
  return true;
}

// Moves this process into the cgroup `path` of the hierarchy mounted as
// `m`: "0" written to its cgroup.procs means the writer itself.
std::optional<std::string> join(const CgroupMount &m, const std::string &path) {
  std::string rel = path;
  if (m.root != "/") {
    if (rel.rfind(m.root, 0) != 0) return "its path " + path + " is outside the mount's root " + m.root;
    rel = rel.substr(m.root.size());
  }
  const std::string procs = m.mountpoint + (rel.empty() || rel[0] != '/' ? "/" : "") + rel +
                            (rel.empty() || rel.back() != '/' ? "/" : "") + "cgroup.procs";
  UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return procs + ": " + errno_text(errno);
  if (::write(fd.get(), "0", 1) != 1) return procs + ": " + errno_text(errno);
  return std::nullopt;
}

void join_cgroups(int pid, Channel &channel) {
  auto text = plugins::proc::detail::read_text("/proc/" + std::to_string(pid) + "/cgroup");
  if (!text) throw sdk::FailedPrecondition("container init " + std::to_string(pid) + " is gone");
  const std::vector<CgroupMount> mounts = cgroup_mounts();
  bool any_v1 = false;
  std::istringstream lines(*text);
  std::string line;
  std::vector<std::pair<std::string, std::string>> wanted;  // controllers, path
  while (std::getline(lines, line)) {
    const auto a = line.find(':');
    const auto b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::string controllers = line.substr(a + 1, b - a - 1);
    any_v1 = any_v1 || !controllers.empty();
    wanted.emplace_back(std::move(controllers), line.substr(b + 1));
  }
  for (const auto &[controllers, path] : wanted) {
    const bool v2 = controllers.empty();
    // A v2 hierarchy beside v1 controllers (systemd's hybrid mode) holds no
    // controller, and name=systemd only tracks services: neither limits the
    // fault, so failing to join them is said, not fatal.
    const bool best_effort = controllers == "name=systemd" || (v2 && any_v1);
    const std::string label = v2 ? std::string("cgroup v2") : "cgroup v1 hierarchy " + controllers;
    const CgroupMount *m = nullptr;
    for (const auto &c : mounts) {
      if (c.v2 == v2 && (v2 || has_all(c.options, controllers))) {
        m = &c;
        break;
      }
    }
    std::optional<std::string> why =
        m ? join(*m, path) : std::optional<std::string>("it is not mounted here");
    if (!why) continue;
    if (best_effort) {
      channel.log("info", "did not join the container's " + label + " (" + *why + ")");
      continue;
    }
    throw sdk::FailedPrecondition("cannot join the container's " + label + " " + path + ": " + *why);
  }
}

}  // namespace

void enter_container(const EnterPlan &plan, const std::string &state_dir, Channel &channel) {
  const std::string pid = std::to_string(plan.pid);
  const std::string gone = "container init " + pid + " is gone";
  // setns order: ipc, uts, net, pid (children only), mnt last, since after
  // it the host's /proc and /sys are no longer this process's.
  std::vector<Namespace> wanted;
  if (plan.ipc) wanted.push_back({"ipc", CLONE_NEWIPC, {}});
  if (plan.uts) wanted.push_back({"uts", CLONE_NEWUTS, {}});
  if (plan.net) wanted.push_back({"net", CLONE_NEWNET, {}});
  if (plan.pid_ns) wanted.push_back({"pid", CLONE_NEWPID, {}});
  if (plan.mnt) wanted.push_back({"mnt", CLONE_NEWNS, {}});
  for (auto &ns : wanted) {
    const std::string path = "/proc/" + pid + "/ns/" + ns.name;
    ns.fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns.fd) {
      if (errno == ENOENT || errno == ESRCH) throw sdk::FailedPrecondition(gone);
      throw os_error(errno, "cannot open " + path);
    }
  }
  // Checked after the handles are held: were the pid reused since the
  // plugin resolved it, these would be another process's namespaces.
  if (!plugins::proc::same_process(plugins::proc::start_time_of(plan.pid), plan.start))
    throw sdk::FailedPrecondition(gone);

  // The plugin makes it; made here (private) if it did not, so a missing
  // dir is not mistaken for a gone container.
  std::error_code ec;
  if (std::filesystem::create_directories(state_dir, ec))
    std::filesystem::permissions(state_dir, std::filesystem::perms::owner_all, ec);
  {
    // fd 4 is held from the helper's start (main), so the dup2 replaces
    // that placeholder and never a namespace handle opened above.
    UniqueFd state(::open(state_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!state) throw os_error(errno, "cannot open the state dir " + state_dir);
    if (::dup2(state.get(), kStateFd) != kStateFd) throw os_error(errno, "dup2 of the state dir");
    // Kept out of whatever a fault executes (a script, a tracer's target).
    ::fcntl(kStateFd, F_SETFD, FD_CLOEXEC);
  }

  if (plan.cgroup) join_cgroups(plan.pid, channel);

  for (auto &ns : wanted) {
    if (::setns(ns.fd.get(), ns.type) != 0)
      throw os_error(errno, std::string("cannot enter the container's ") + ns.name + " namespace");
  }
  if (plan.mnt && ::chdir("/") != 0) throw os_error(errno, "chdir to the container's /");
}

void fork_into_pid_namespace(const EnterPlan &plan, int channel_fd) {
  if (!plan.pid_ns) return;
  // The child learns of a parent that died before its PR_SET_PDEATHSIG
  // took hold by this pipe: its write end closes with the parent.
  int alive[2];
  if (::pipe2(alive, O_CLOEXEC) != 0) throw os_error(errno, "pipe");
  const pid_t child = ::fork();
  if (child < 0) {
    // fork into a pid namespace whose init has exited fails with ENOMEM.
    if (errno == ENOMEM)
      throw sdk::FailedPrecondition("container init " + std::to_string(plan.pid) +
                                    " is gone (its pid namespace takes no new process)");
    throw os_error(errno, "fork into the container's pid namespace");
  }
  if (child == 0) {
    ::close(alive[1]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    pollfd p = {alive[0], POLLIN, 0};
    if (::poll(&p, 1, 0) != 0) ::_exit(1);  // the write end closed: the parent is gone
    ::close(alive[0]);
    return;
  }
  ::close(alive[0]);
  ::close(channel_fd);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) ::_exit(WEXITSTATUS(status));
  ::_exit(128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0));
}

}  // namespace blade::cri
