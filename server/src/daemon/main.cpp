// bladed: the Blade daemon.
//   start: config -> logging -> plugins -> HTTP; SIGTERM/SIGINT stop it.
#include <malloc.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include <fmt/format.h>

#include "blade/core/model/log.hpp"
#include "build_info.hpp"
#include "check_plugin_command.hpp"
#include "config.hpp"
#include "daemon.hpp"
#include "http/http_server.hpp"

namespace {

using blade::server::Config;

void write_port_file(const std::filesystem::path &file, int port) {
  // Written whole under a temporary name, so a reader never sees half a port.
  auto tmp = file;
  tmp += ".tmp";
  {
    std::ofstream out(tmp);
    out << port << "\n";
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, file);
}

// After a burst of requests SQLite's page caches stay full, glibc keeps the
// freed memory of every thread's arena, and code that ran once stays
// mapped; an idle daemon should not sit on the peak. Once per burst, when a
// period passes with no request, the daemon lets it go (it comes back on
// use).
class IdleTrim {
 public:
  explicit IdleTrim(blade::server::Daemon &daemon) : daemon_(daemon) {}
  // A plugin reload by signal runs new plugins' load code without a request.
  void burst() { pending_ = true; }
  void tick(std::uint64_t served) {
    if (served != last_) {
      last_ = served;
      pending_ = true;
    } else if (pending_) {
      daemon_.release_memory();
      pending_ = false;
    }
  }

 private:
  blade::server::Daemon &daemon_;
  std::uint64_t last_ = 0;
  bool pending_ = true;  // what ran after the release at startup
};

void check_auth_config(const Config &config) {
  if (config.all_tokens().empty() && !config.no_auth) {
    throw std::invalid_argument(
        "no API token configured: set BLADE_API_TOKEN (or token: / tokens: in the config file); "
        "--no-auth is allowed on a loopback address only");
  }
  if (config.no_auth && !blade::server::is_loopback(config.bind)) {
    throw std::invalid_argument(
        fmt::format("--no-auth refused: bind address {} is not loopback", config.bind));
  }
}

// Rolls back what the last run left and arms the crash handler. A call the
// last run died in (its crash handler's record) is quarantined instead of
// called again, so a plugin that segfaults in destroy cannot crash-loop us.
blade::RecoveryReport recover_at_start(const Config &config, blade::server::Daemon &daemon) {
  const std::filesystem::path record = config.state_dir / "crashed-call";
  auto crashed = blade::read_crash_record(record);
  if (crashed) {
    blade::log::error("the last run died inside a plugin call",
                      {{"plugin", crashed->plugin},
                       {"call", crashed->op},
                       {"uid", crashed->uid},
                       {"signal", std::to_string(crashed->signal)}});
  }
  blade::install_crash_handler(record);
  auto report = daemon.service().recover(crashed);
  std::error_code ec;
  std::filesystem::remove(record, ec);  // acted on, and stored with the experiment
  return report;
}

// `bladed recover`: what a start does before serving, then exit; the
// systemd unit's stop hook runs it so no fault outlives the service.
int recover(const Config &config) {
  std::filesystem::create_directories(config.state_dir);
  blade::server::Daemon daemon(config);
  auto report = recover_at_start(config, daemon);
  std::printf("recovered: %d destroyed, %d still failing, %d quarantined\n", report.destroyed,
              report.failed, report.quarantined);
  return report.failed == 0 && report.quarantined == 0 ? 0 : 1;
}

int serve(const Config &config) {
  check_auth_config(config);
  std::filesystem::create_directories(config.state_dir);

  // Signals are taken synchronously by this thread; block them before any
  // other thread starts so none of those receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  blade::server::Daemon daemon(config);
  // No fault left behind: whatever the last run left active is rolled back
  // before anything new is accepted.
  recover_at_start(config, daemon);
  daemon.service().rearm_deadlines();
  // Policies that expired while bladed was down are deleted, and the rule
  // set is published, before any client or config stream can see it.
  daemon.policies().start();

  blade::server::HttpServer http(config, daemon);
  int port = http.bind();
  std::thread server_thread([&] { http.run(); });
  // Ready means accepting: only then is the port announced, and only then
  // can a stop() take effect.
  http.wait_until_running();
  if (config.port_file) write_port_file(*config.port_file, port);
  blade::log::info("bladed listening",
                   {{"address", config.bind},
                    {"port", std::to_string(port)},
                    {"plugins_loaded", std::to_string(daemon.registry().loaded_count())},
                    {"plugins_refused",
                     std::to_string(daemon.plugins_found() - daemon.registry().loaded_count())},
                    {"database", config.sqlite_path.string()},
                    {"version", BLADE_VERSION}});
  // Startup is a burst too: plugin specs parsed, every library's
  // constructors run, the store opened.
  daemon.release_memory();

  // SIGHUP reloads plugins, as POST /v1/plugins/reload does; the others
  // stop. Between signals this thread gives back what a burst needed
  // (IdleTrim) once requests have stopped coming.
  int sig = 0;
  IdleTrim trim(daemon);
  for (;;) {
    const timespec period{2, 0};
    sig = sigtimedwait(&signals, nullptr, &period);
    if (sig < 0) {
      trim.tick(http.requests_served());
      continue;
    }
    if (sig != SIGHUP) break;
    trim.burst();
    try {
      daemon.reload_plugins();
    } catch (const std::exception &e) {
      blade::log::error("plugin reload failed", {{"error", e.what()}});
    }
  }
  blade::log::info("stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  http.stop();
  server_thread.join();
  if (config.keep_faults_on_exit) {
    blade::log::warn(
        "leaving active faults in place (keep-faults-on-exit); the next start rolls them back");
  } else {
    daemon.service().destroy_all_active(sig == SIGTERM ? "SIGTERM" : "SIGINT");
  }
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  // glibc gives each of the many HTTP threads its own heap arena (up to 8
  // per core), and after a burst each keeps the pages its few long-lived
  // objects pin: 2 MiB more resident after load on this 2-core VM. The
  // daemon waits on io far more than it allocates, so one arena per core
  // costs no measurable throughput. MALLOC_ARENA_MAX still wins if set.
  if (!std::getenv("MALLOC_ARENA_MAX"))
    ::mallopt(M_ARENA_MAX, static_cast<int>(std::max(2u, std::thread::hardware_concurrency())));
  try {
    // `check-plugin --exercise` has options of its own (check_plugin_command.hpp).
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (blade::server::is_exercise_invocation(args)) {
      return blade::server::run_exercise(blade::server::parse_exercise_invocation(args));
    }
    auto inv = blade::server::parse_invocation(argc, argv);
    switch (inv.command) {
      case blade::server::Command::Help:
        std::cout << inv.help_text;
        return 0;
      case blade::server::Command::Version:
        std::cout << "bladed " << BLADE_VERSION << "\n";
        return 0;
      case blade::server::Command::CheckPlugin:
        return blade::server::check_plugin(inv.plugin_file, inv.config.plugin_configs);
      case blade::server::Command::Recover:
      case blade::server::Command::Serve:
        break;
    }
    blade::log::set_level(inv.config.log_level);
    blade::log::set_format(inv.config.log_format);
    return inv.command == blade::server::Command::Recover ? recover(inv.config) : serve(inv.config);
  } catch (const std::invalid_argument &e) {
    std::fprintf(stderr, "bladed: %s\n", e.what());
    return 2;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "bladed: %s\n", e.what());
    return 1;
  }
}
