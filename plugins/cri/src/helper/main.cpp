// blade-cri-helper: runs one os, disk or network fault inside a container
// for the cri plugin. Started by the plugin (helper_session.hpp) with the
// protocol of helper_protocol.hpp on fd 3; reads the request, enters the
// container (enter.hpp), runs the fault (runner.hpp) and answers.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>

#include <blade/plugin.hpp>

#include "../helper_protocol.hpp"
#include "channel.hpp"
#include "enter.hpp"
#include "runner.hpp"

namespace {
constexpr int kChannelFd = 3;
}

int main() {
  using namespace blade::cri;
  // As in bladed: a write to a peer that is gone fails with EPIPE, not a
  // signal (the faults that start programs reset it for them).
  ::signal(SIGPIPE, SIG_IGN);
  if (::fcntl(kChannelFd, F_SETFD, FD_CLOEXEC) != 0) {
    std::fputs("blade-cri-helper: run by the cri plugin only (no protocol socket on fd 3)\n",
               stderr);
    return 64;
  }
  // fd 4 becomes the state dir; held from here so nothing else takes it.
  const int placeholder = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (placeholder != kStateFd && (placeholder < 0 || ::dup2(placeholder, kStateFd) != kStateFd)) {
    std::perror("blade-cri-helper: fd 4");
    return 70;
  }
  if (placeholder != kStateFd) ::close(placeholder);

  Channel channel(kChannelFd);
  std::optional<std::string> line;
  try {
    line = channel.read_line();
  } catch (const std::length_error &e) {
    channel.done(BLADE_STATUS_INVALID_ARGUMENT, std::string("helper request: ") + e.what());
    return 2;
  }
  if (!line) return 0;  // the plugin went before it asked anything
  HelperRequest req;
  try {
    req = request_from_json(*line);
  } catch (const std::invalid_argument &e) {
    channel.done(BLADE_STATUS_INVALID_ARGUMENT, e.what());
    return 2;
  }
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (req.deadline_ms > 0)
    deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(req.deadline_ms);

  // Single-threaded up to here and through entering: no thread exists
  // before the inner faults are built.
  try {
    enter_container(req.enter, req.state_dir, channel);
    fork_into_pid_namespace(req.enter, kChannelFd);
  } catch (const blade::sdk::Error &e) {
    channel.done(e.status(), e.what());
    return 1;
  } catch (const std::exception &e) {
    channel.done(BLADE_STATUS_INTERNAL, e.what());
    return 1;
  }
  return run_request(channel, req, deadline);
}
