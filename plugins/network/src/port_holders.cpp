#include "port_holders.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>

#include "../../common/pid_guard.hpp"
#include "../../common/proc_reader.hpp"
#include "socket_table.hpp"

namespace blade::network {
namespace {

namespace proc = plugins::proc;
using Clock = std::chrono::steady_clock;

// Gone, a zombie (its sockets are closed already), or another process
// that reused the pid.
bool exited(const PortHolder &h) {
  auto p = proc::read_process(h.pid);
  return !p || p->dead() || p->stat.start_time != h.start_time;
}

// Waits until every holder in `left` exited or `wait` passed; the ones
// still there.
std::vector<Stopped *> wait_exited(std::vector<Stopped *> left, const sdk::Call &call,
                                   std::chrono::milliseconds wait) {
  const auto deadline = Clock::now() + wait;
  for (;;) {
    std::erase_if(left, [](const Stopped *s) { return exited(s->holder); });
    if (left.empty() || Clock::now() >= deadline) return left;
    call.check();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Signals each of `targets`; one that is gone already counts as stopped.
void signal_each(const std::vector<Stopped *> &targets, int sig, const char *name) {
  for (Stopped *s : targets) {
    const int err = proc::signal_if_same(s->holder.pid, s->holder.start_time, sig);
    if (err == 0) {
      s->signal = name;
    } else if (err != ESRCH) {
      throw sdk::FailedPrecondition("port: cannot send " + std::string(name) + " to pid " +
                                    std::to_string(s->holder.pid) + " (" + s->holder.comm +
                                    "), which holds the port: " + std::strerror(err));
    }
  }
}

}  // namespace

nlohmann::json PortHolder::describe() const {
  return {{"pid", pid}, {"comm", comm}, {"cmdline", cmdline}};
}

nlohmann::json Stopped::describe() const {
  nlohmann::json out = holder.describe();
  out["signal"] = signal.empty() ? nlohmann::json(nullptr) : nlohmann::json(signal);
  return out;
}

std::set<unsigned long> tcp_inodes_on(std::uint16_t port, pid_t netns_pid) {
  std::set<unsigned long> out;
  for (const SocketEntry &s : tcp_sockets(netns_pid))
    if (s.local_port == port && s.inode != 0) out.insert(s.inode);
  return out;
}

std::set<unsigned long> own_listeners_on(std::uint16_t port, pid_t pid) {
  const auto mine = socket_inodes_of(pid);
  std::set<unsigned long> out;
  for (const SocketEntry &s : tcp_sockets(pid))
    if (s.local_port == port && s.state == kTcpListen && mine.count(s.inode)) out.insert(s.inode);
  return out;
}

std::vector<PortHolder> port_holders(const std::set<unsigned long> &inodes, pid_t daemon) {
  std::vector<PortHolder> out;
  for (pid_t pid : holders_of(inodes)) {
    auto p = proc::read_process(pid);
    if (!p || p->dead()) continue;
    PortHolder h;
    h.pid = pid;
    h.comm = p->stat.comm;
    h.cmdline = p->cmdline;
    h.start_time = p->stat.start_time;
    h.protected_why = plugins::why_protected(pid, daemon).value_or("");
    out.push_back(std::move(h));
  }
  return out;
}

std::string holder_list(const std::vector<PortHolder> &holders) {
  std::string out;
  for (const auto &h : holders)
    out += (out.empty() ? "" : ", ") + ("pid " + std::to_string(h.pid) + " (" + h.comm + ")");
  return out;
}

std::vector<Stopped> stop_holders(const std::vector<PortHolder> &holders, const sdk::Call &call,
                                  std::chrono::milliseconds term_wait,
                                  std::chrono::milliseconds kill_wait) {
  std::vector<Stopped> stopped;
  for (const auto &h : holders)
    stopped.push_back(Stopped{h, ""});
  std::vector<Stopped *> left;
  for (auto &s : stopped)
    left.push_back(&s);
  // SIGTERM first, so a server may close cleanly; SIGKILL for the rest.
  signal_each(left, SIGTERM, "SIGTERM");
  left = wait_exited(std::move(left), call, term_wait);
  signal_each(left, SIGKILL, "SIGKILL");
  left = wait_exited(std::move(left), call, kill_wait);
  if (!left.empty()) {
    std::vector<PortHolder> stuck;
    for (const Stopped *s : left)
      stuck.push_back(s->holder);
    throw sdk::FailedPrecondition("port: " + holder_list(stuck) +
                                  " did not exit after SIGKILL (stuck in the kernel?); the "
                                  "port is still theirs");
  }
  return stopped;
}

}  // namespace blade::network
