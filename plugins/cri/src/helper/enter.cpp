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

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <optional>
#include <utility>
#include <vector>

#include <blade/plugin.hpp>

#include "../../../common/cgroup_paths.hpp"
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

// Moves this process into the cgroup dir `dir`: "0" written to its
// cgroup.procs means the writer itself. What went wrong, or nullopt.
std::optional<std::string> join(const std::string &dir) {
  const std::string procs = dir + "/cgroup.procs";
  UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return procs + ": " + errno_text(errno);
  if (::write(fd.get(), "0", 1) != 1) return procs + ": " + errno_text(errno);
  return std::nullopt;
}

// Every hierarchy the init is in, found under this process's (the host's)
// cgroup mounts.
void join_cgroups(int pid, Channel &channel) {
  namespace cg = plugins::cgroup;
  const auto text = plugins::proc::detail::read_text("/proc/" + std::to_string(pid) + "/cgroup");
  if (!text) throw sdk::FailedPrecondition("container init " + std::to_string(pid) + " is gone");
  const auto mountinfo = plugins::proc::detail::read_text("/proc/self/mountinfo");
  if (!mountinfo) throw sdk::FailedPrecondition("cannot read /proc/self/mountinfo");
  const std::vector<cg::Membership> members = cg::parse_memberships(*text);
  const std::vector<cg::Mount> mounts = cg::parse_mounts(*mountinfo);
  const bool any_v1 = std::any_of(members.begin(), members.end(),
                                  [](const cg::Membership &m) { return !m.controllers.empty(); });
  for (const cg::Membership &m : members) {
    const bool v2 = m.controllers.empty();
    std::string names;
    for (const auto &c : m.controllers)
      names += (names.empty() ? "" : ",") + c;
    // A v2 hierarchy beside v1 controllers (systemd's hybrid mode) holds no
    // controller, and name=systemd only tracks services: neither limits the
    // fault, so failing to join them is said, not fatal.
    const bool best_effort = names == "name=systemd" || (v2 && any_v1);
    const std::string label = v2 ? std::string("cgroup v2") : "cgroup v1 hierarchy " + names;
    const std::optional<std::string> dir = cg::directory_of(m, mounts, "");
    const std::optional<std::string> why =
        dir ? join(*dir) : std::optional<std::string>("it is not mounted here");
    if (!why) continue;
    if (best_effort) {
      channel.log("info", "did not join the container's " + label + " (" + *why + ")");
      continue;
    }
    throw sdk::FailedPrecondition("cannot join the container's " + label + " " + m.path + ": " +
                                  *why);
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
  // took hold by this pipe: its write end closes with the parent. (Not by
  // getppid(): the parent is outside the child's pid namespace, where
  // getppid() says 0 while it lives.)
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
