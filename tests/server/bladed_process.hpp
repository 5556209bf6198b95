// A real bladed for HTTP tests: started on an ephemeral port with a temp
// state dir and a plugin dir, stopped (SIGKILL by ChildProcess) at the end.
#pragma once

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../support/child_process.hpp"
#include "../support/file_text.hpp"
#include "../support/temp_dir.hpp"

namespace blade::test {

inline const std::string kBladed = BLADE_BLADED_PATH;
inline const std::filesystem::path kTestPlugins = BLADE_TEST_PLUGIN_DIR;
// The admin token every BladedProcess is started with (BLADE_API_TOKEN).
inline const std::string kToken = "0123456789abcdef0123456789abcdef";

struct BladedOptions {
  std::vector<std::string> args;  // appended to the defaults
  std::vector<std::string> env;   // NAME=value
  // Copied from the test plugin dir into <dir>/plugins.
  std::vector<std::string> plugins = {"c_marker.so", "init_fail.so"};
  std::string scheme = "http";  // "https" when args carry --tls-cert/--tls-key
  // Other plugin files (e.g. the real plugins of build/plugins), copied too.
  std::vector<std::filesystem::path> plugin_files;
};

class BladedProcess {
 public:
  TempDir dir{"bladed-test"};
  std::unique_ptr<ChildProcess> process;
  int port = 0;

  explicit BladedProcess(BladedOptions options = {}) : options_(std::move(options)) {
    namespace fs = std::filesystem;
    fs::create_directories(dir / "plugins");
    std::vector<fs::path> files = options_.plugin_files;
    for (const auto &name : options_.plugins)
      files.push_back(kTestPlugins / name);
    for (const auto &file : files) {
      const auto copy = dir / "plugins" / file.filename();
      fs::copy_file(file, copy);
      fs::permissions(copy, fs::perms(0755));
    }
    start();
  }

  // A new bladed in place of this one (killed before: SIGKILL, a crash) on
  // the same plugin and state dirs, as a restart after a crash would be; its
  // log is appended to the same file. Returns once it announces its port,
  // that is after its recovery at start has run.
  void restart() {
    std::filesystem::remove(dir / "port");
    start();
  }

  // The environment (NAME=value) of the next restart() in place of the one
  // given at construction: a daemon crashed by an armed failpoint restarts
  // without it.
  void set_env(std::vector<std::string> env) { options_.env = std::move(env); }

  // Kills the daemon as a crash would (SIGKILL, so nothing of it runs) and
  // waits until it is gone.
  void crash() {
    process->signal(SIGKILL);
    REQUIRE(process->exit_code(std::chrono::seconds(10)) == -SIGKILL);
  }

  std::filesystem::path log_file() const { return dir / "bladed.log"; }
  std::string url() const { return options_.scheme + "://127.0.0.1:" + std::to_string(port); }

  // A client for the daemon; for https it trusts any certificate.
  httplib::Client client() const {
    httplib::Client c(url());
    c.set_connection_timeout(5);
    c.set_read_timeout(10);
    if (options_.scheme == "https") c.enable_server_certificate_verification(false);
    return c;
  }

 private:
  void start() {
    namespace fs = std::filesystem;
    std::vector<std::string> argv = {kBladed,
                                     "--port",
                                     "0",
                                     "--port-file",
                                     (dir / "port").string(),
                                     "--plugin-dir",
                                     (dir / "plugins").string(),
                                     "--state-dir",
                                     (dir / "state").string()};
    argv.insert(argv.end(), options_.args.begin(), options_.args.end());
    std::vector<std::string> env = {"BLADE_API_TOKEN=" + kToken};
    env.insert(env.end(), options_.env.begin(), options_.env.end());
    process = std::make_unique<ChildProcess>(argv, env, log_file().string());
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!fs::exists(dir / "port")) {
      if (std::chrono::steady_clock::now() > deadline ||
          process->exit_code(std::chrono::milliseconds(0))) {
        FAIL("bladed did not start: " << read_text(log_file()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    port = std::stoi(read_text(dir / "port"));
  }

  BladedOptions options_;
};

// A bladed loading the test plugins `names` (of BLADE_TEST_PLUGIN_DIR),
// with `args` appended to its command line.
inline BladedOptions with_test_plugins(std::vector<std::string> names,
                                       std::vector<std::string> args = {}) {
  BladedOptions o;
  o.plugins = std::move(names);
  o.args = std::move(args);
  return o;
}

// The admin token's headers.
inline httplib::Headers auth() {
  return {{"X-Api-Token", kToken}};
}

inline httplib::Result post_json(httplib::Client &c, const std::string &path,
                                 const nlohmann::json &body,
                                 const httplib::Headers &headers = auth()) {
  return c.Post(path.c_str(), headers, body.dump(), "application/json");
}

// The body creating a c_marker fault: the file `path` exists while it runs.
inline nlohmann::json marker_experiment(const std::filesystem::path &path) {
  return {{"target", "cmarker"}, {"action", "touch"}, {"flags", {{"path", path.string()}}}};
}

}  // namespace blade::test
