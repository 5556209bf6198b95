// A real bladed for benchmarks: a child process on an ephemeral port with a
// temp state dir and the given plugin files, quiet logs; `env` ("K=V", e.g.
// MallocCounter::env()) is added to its environment.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../tests/support/child_process.hpp"
#include "../tests/support/file_text.hpp"
#include "../tests/support/temp_dir.hpp"

namespace blade::bench {

inline const std::string kBenchToken = "bench-token-0123456789abcdef0123";

class BenchBladed {
 public:
  BenchBladed(const std::vector<std::filesystem::path> &plugins,
              const std::vector<std::string> &extra_args,
              const std::vector<std::string> &env = {}) {
    namespace fs = std::filesystem;
    fs::create_directories(dir_ / "plugins");
    for (const auto &p : plugins) {
      fs::copy_file(p, dir_ / "plugins" / p.filename());
      fs::permissions(dir_ / "plugins" / p.filename(), fs::perms(0755));
    }
    std::vector<std::string> argv = {BLADE_BLADED_PATH,
                                     "--port",
                                     "0",
                                     "--port-file",
                                     (dir_ / "port").string(),
                                     "--plugin-dir",
                                     (dir_ / "plugins").string(),
                                     "--state-dir",
                                     (dir_ / "state").string(),
                                     "--log-level",
                                     "warn"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    std::vector<std::string> environment = {"BLADE_API_TOKEN=" + kBenchToken};
    environment.insert(environment.end(), env.begin(), env.end());
    process_ =
        std::make_unique<test::ChildProcess>(argv, environment, (dir_ / "bladed.log").string());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!fs::exists(dir_ / "port") || test::read_text(dir_ / "port").empty()) {
      if (std::chrono::steady_clock::now() > deadline ||
          process_->exit_code(std::chrono::milliseconds(0))) {
        throw std::runtime_error("bladed did not start: " + test::read_text(dir_ / "bladed.log"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    port_ = std::stoi(test::read_text(dir_ / "port"));
  }

  int port() const { return port_; }
  pid_t pid() const { return process_->pid(); }
  const std::filesystem::path &dir() const { return dir_.path(); }
  // Its database where bladed puts it by default (no --sqlite-path).
  std::filesystem::path database() const { return dir_.path() / "state" / "blade.db"; }

 private:
  test::TempDir dir_{"blade-bench"};
  std::unique_ptr<test::ChildProcess> process_;
  int port_ = 0;
};

// The size of a database's write-ahead log in MiB, 0 when it has none.
inline double wal_mb(const std::filesystem::path &database) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(database.string() + "-wal", ec);
  return ec ? 0.0 : static_cast<double>(size) / (1024.0 * 1024.0);
}

// The calls benchmarks make; a failed one throws (a benchmark has no use
// for a figure measured around an error).
class BenchClient {
 public:
  explicit BenchClient(int port) : c_("127.0.0.1", port) { c_.set_read_timeout(60); }
  // Keeps one connection open across calls (and sends without Nagle's
  // delay), for latency figures of the requests rather than of connecting.
  BenchClient &keep_alive() {
    c_.set_keep_alive(true);
    c_.set_tcp_nodelay(true);
    return *this;
  }
  // The created experiment's data.
  nlohmann::json create(const nlohmann::json &body) {
    auto r = c_.Post("/v1/experiments", headers_, body.dump(), "application/json");
    if (!r || r->status != 201)
      throw std::runtime_error("create failed: " + (r ? r->body : std::string("no answer")));
    return nlohmann::json::parse(r->body)["data"];
  }
  void destroy(const std::string &uid) {
    auto r = c_.Delete(("/v1/experiments/" + uid).c_str(), headers_);
    if (!r || r->status != 200) throw std::runtime_error("destroy failed");
  }
  // One GET: its status and parsed body (a discarded value when it is no
  // JSON), {0, null} when no answer came; its latency is appended to `ms`
  // when given. The one call that does not throw: benchmarks that check
  // answers count a wrong one and go on.
  std::pair<int, nlohmann::json> get(const std::string &path, std::vector<double> *ms = nullptr) {
    const auto a = std::chrono::steady_clock::now();
    auto r = c_.Get(path.c_str(), headers_);
    const auto b = std::chrono::steady_clock::now();
    if (!r) return {0, nullptr};
    if (ms) ms->push_back(std::chrono::duration<double, std::milli>(b - a).count());
    return {r->status, nlohmann::json::parse(r->body, nullptr, false)};
  }
  // POST /v1/policies (an HTTP fault policy).
  void create_policy(const nlohmann::json &body) {
    auto r = c_.Post("/v1/policies", headers_, body.dump(), "application/json");
    if (!r || r->status != 201)
      throw std::runtime_error("POST /v1/policies failed: " +
                               (r ? std::to_string(r->status) + " " + r->body : "no answer"));
  }

 private:
  httplib::Client c_;
  httplib::Headers headers_ = {{"X-Api-Token", kBenchToken}};
};

}  // namespace blade::bench
