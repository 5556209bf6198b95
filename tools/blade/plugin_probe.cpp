#include "plugin_probe.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "blade/core/model/bounded_json.hpp"
#include "blade/core/model/log.hpp"
#include "blade/core/plugin/executor_router.hpp"
#include "blade/core/plugin/plugin_json.hpp"
#include "blade/core/plugin/plugin_loader.hpp"
#include "blade/core/plugin/registry.hpp"
#include "build_info.hpp"

namespace blade::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr auto kProbeDeadline = std::chrono::seconds(20);

// In the child: load, describe, unload; the answer is one JSON document.
nlohmann::json load_and_describe(const fs::path &file) {
  std::error_code ec;
  const fs::path state =
      fs::temp_directory_path(ec) / fmt::format("blade-plugin-probe-{}", ::getpid());
  nlohmann::json out;
  try {
    auto plugin = load_plugin(file, HostSettings(BLADE_VERSION, state));
    out = to_json(record_of(*plugin));
    nlohmann::json routes = nlohmann::json::array();
    for_each_route_name(plugin->spec(),
                        [&](const TargetSpec &t, const ActionSpec &, const std::string &name) {
                          routes.push_back({t.scope, t.target, name});
                        });
    out["routes"] = routes;
    // Listed as bladed lists it: routed by core's router over a registry
    // holding this one plugin.
    Registry registry;
    registry.add(plugin);
    out["specs"] = catalogue_json(ExecutorRouter(registry).catalogue());
  } catch (const PluginRefused &e) {
    out = {{"status", "refused"}, {"error", e.what()}, {"name", e.name()}};
  } catch (const std::exception &e) {
    out = {{"status", "refused"}, {"error", e.what()}};
  }
  fs::remove_all(state, ec);
  return out;
}

[[noreturn]] void child_main(const fs::path &file, int out_fd) {
  // The plugin's own chatter must not reach blade's output.
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0) {
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(null_fd, STDOUT_FILENO);
    ::dup2(null_fd, STDERR_FILENO);
  }
  log::set_level(log::Level::Error);
  std::string text;
  try {
    text = load_and_describe(file).dump();
  } catch (...) {
    text = R"({"status":"refused","error":"unexpected failure while loading"})";
  }
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(out_fd, text.data() + done, text.size() - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::_exit(0);
}

// Everything the child writes until it closes the pipe or the deadline.
std::string read_until_closed(int fd, Clock::time_point deadline, bool &timed_out) {
  std::string text;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      return text;
    }
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return text;
    text.append(buf, static_cast<std::size_t>(n));
  }
}

ProbedPlugin from_json(const nlohmann::json &j) {
  ProbedPlugin p;
  p.loaded = j.value("status", "") == "loaded";
  p.error = j.value("error", "");
  p.name = j.value("name", "");
  p.version = j.value("version", "");
  p.abi = j.value("abi", "");
  p.targets = j.value("targets", std::vector<std::string>{});
  p.specs = j.value("specs", nlohmann::json::array());
  if (j.contains("routes")) {
    for (const auto &r : j["routes"])
      p.routes.push_back(
          {r.at(0).get<std::string>(), r.at(1).get<std::string>(), r.at(2).get<std::string>()});
  }
  return p;
}

}  // namespace

ProbedPlugin probe_plugin(const fs::path &file) {
  ProbedPlugin failed;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    failed.error = fmt::format("cannot make a pipe: {}", ::strerror(errno));
    return failed;
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    failed.error = fmt::format("cannot fork: {}", ::strerror(errno));
    return failed;
  }
  if (pid == 0) {
    ::close(fds[0]);
    child_main(file, fds[1]);
  }
  ::close(fds[1]);
  bool timed_out = false;
  const std::string text = read_until_closed(fds[0], Clock::now() + kProbeDeadline, timed_out);
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    failed.error = fmt::format("the plugin did not finish loading within {} s",
                               std::chrono::seconds(kProbeDeadline).count());
    return failed;
  }
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    failed.error = fmt::format("the plugin crashed while loading (signal {}, SIG{})", sig,
                               ::sigabbrev_np(sig) ? ::sigabbrev_np(sig) : "?");
    return failed;
  }
  // The child ran the plugin's code, so its output is the plugin's to shape.
  auto j = parse_bounded_json(text).value;
  if (j.is_discarded() || !j.is_object()) {
    failed.error = fmt::format("the plugin ended the loading process (exit status {})",
                               WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return failed;
  }
  return from_json(j);
}

nlohmann::json specs_of_plugin_dir(const fs::path &dir) {
  nlohmann::json specs = nlohmann::json::array();
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto &f : fs::directory_iterator(dir, ec))
    if (f.path().extension() == ".so") files.push_back(f.path());
  std::sort(files.begin(), files.end());
  for (const auto &file : files) {
    auto probed = probe_plugin(file);
    if (!probed.loaded) continue;
    for (auto &entry : probed.specs)
      specs.push_back(std::move(entry));
  }
  return specs;
}

}  // namespace blade::cli
