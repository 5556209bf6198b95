// bladed: the Blade daemon.
//   start: config -> logging -> plugins -> HTTP; SIGTERM/SIGINT stop it.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include <fmt/format.h>

#include "blade/core/log.hpp"
#include "blade/core/plugin_loader.hpp"
#include "blade/core/registry.hpp"
#include "build_info.hpp"
#include "config.hpp"
#include "http_server.hpp"
#include "plugin_json.hpp"

namespace {

using blade::server::Config;

blade::HostSettings host_settings(const Config &config) {
  return {BLADE_VERSION, config.state_dir / "plugins"};
}

// Loads one file the way the daemon would and prints its record: plugin
// authors (and `blade plugin install`) validate a .so with it. Exit 0 only
// if the plugin loads.
int check_plugin(const std::filesystem::path &file) {
  blade::log::set_level(blade::log::Level::Warn);
  std::error_code ec;
  auto state = std::filesystem::temp_directory_path(ec) / fmt::format("bladed-check-{}", ::getpid());
  blade::Registry registry;
  blade::load_plugins({file}, {BLADE_VERSION, state}, registry);
  std::filesystem::remove_all(state, ec);
  auto records = registry.records();
  auto json = blade::server::to_json(records.at(0));
  std::cout << json.dump(2) << "\n";
  return records.at(0).status == blade::PluginRecord::Status::Loaded ? 0 : 1;
}

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

int serve(const Config &config) {
  if (config.token.empty() && !config.no_auth) {
    throw std::invalid_argument(
        "no API token configured: set BLADE_API_TOKEN (or token: in the config file); "
        "--no-auth is allowed on a loopback address only");
  }
  if (config.no_auth && !blade::server::is_loopback(config.bind)) {
    throw std::invalid_argument(fmt::format("--no-auth refused: bind address {} is not loopback", config.bind));
  }
  std::filesystem::create_directories(config.state_dir);

  // Signals are taken synchronously by this thread; block them before any
  // other thread starts so none of those receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  blade::Registry registry;
  auto dirs = blade::plugin_search_dirs(config.plugin_dirs, std::getenv("BLADE_PLUGIN_PATH"),
                                        config.install_plugin_dir);
  auto files = blade::discover_plugin_files(dirs);
  std::size_t loaded = blade::load_plugins(files, host_settings(config), registry);

  blade::server::HttpServer http(config, registry);
  int port = http.bind();
  if (config.port_file) write_port_file(*config.port_file, port);
  blade::log::info("bladed listening", {{"address", config.bind},
                                        {"port", std::to_string(port)},
                                        {"plugins_loaded", std::to_string(loaded)},
                                        {"plugins_refused", std::to_string(files.size() - loaded)},
                                        {"version", BLADE_VERSION}});
  std::thread server_thread([&] { http.run(); });

  int sig = 0;
  sigwait(&signals, &sig);
  blade::log::info("stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  http.stop();
  server_thread.join();
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  try {
    auto inv = blade::server::parse_invocation(argc, argv);
    switch (inv.command) {
      case blade::server::Command::Help: std::cout << inv.help_text; return 0;
      case blade::server::Command::Version: std::cout << "bladed " << BLADE_VERSION << "\n"; return 0;
      case blade::server::Command::CheckPlugin: return check_plugin(inv.plugin_file);
      case blade::server::Command::Serve: break;
    }
    blade::log::set_level(inv.config.log_level);
    blade::log::set_format(inv.config.log_format);
    return serve(inv.config);
  } catch (const std::invalid_argument &e) {
    std::fprintf(stderr, "bladed: %s\n", e.what());
    return 2;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "bladed: %s\n", e.what());
    return 1;
  }
}
