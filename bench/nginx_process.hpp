// nginx for benchmarks: one process on a config of its own in a temp dir
// (never the system's service or its files), killed with the benchmark.
//
// Each process runs with `master_process off`: the one process is the
// worker, on the same event loop a worker of a master would run, and it is
// the benchmark's direct child, so it dies with it (a master's workers would
// be orphaned if the benchmark were killed). Two workers are two such
// processes on one port with `reuseport`, the kernel spreading connections
// between them as it does between the workers of one master with that
// option.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "../plugins/common/handles.hpp"
#include "../tests/support/child_process.hpp"
#include "../tests/support/file_text.hpp"
#include "../tests/support/temp_dir.hpp"

namespace blade::bench {

// The absolute path of a program found in PATH or the sbin directories
// (nginx lives in /usr/sbin, which a non-root PATH may lack); nullopt when
// there is none.
inline std::optional<std::filesystem::path> find_program(const std::string &name) {
  std::string dirs = std::getenv("PATH") ? std::getenv("PATH") : "";
  dirs += ":/usr/sbin:/usr/local/sbin:/sbin";
  std::size_t from = 0;
  while (from <= dirs.size()) {
    const std::size_t to = std::min(dirs.find(':', from), dirs.size());
    const std::filesystem::path candidate =
        std::filesystem::path(dirs.substr(from, to - from)) / name;
    if (to > from && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    from = to + 1;
  }
  return std::nullopt;
}

// A loopback port nothing listens on now. nginx cannot listen on port 0 and
// say which port it got, so it is given one; the short race with another
// process taking it is caught by NginxProcess, which checks the answer.
inline int free_port() {
  plugins::UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
  if (!fd) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr *>(&addr), &len) != 0)
    throw std::runtime_error("could not find a free port");
  return ntohs(addr.sin_port);
}

// What the nginx processes serve on their port.
struct NginxSite {
  // Empty: answer every request with 200 and kUpstreamBody (the upstream).
  // "127.0.0.1:<port>": a plain reverse proxy to it, keep-alive upstream.
  std::string proxy_to;
  int processes = 1;
};

inline const std::string kUpstreamBody = "ok\n";

class NginxProcess {
 public:
  NginxProcess(const std::filesystem::path &nginx, const NginxSite &site) {
    if (site.processes < 1) throw std::invalid_argument("nginx: processes must be >= 1");
    port_ = free_port();
    write_config(site);
    for (int i = 0; i < site.processes; ++i) {
      processes_.push_back(std::make_unique<test::ChildProcess>(
          std::vector<std::string>{nginx.string(), "-p", dir_.path().string(), "-c",
                                   (dir_ / "nginx.conf").string(), "-e",
                                   (dir_ / "error.log").string()},
          std::vector<std::string>{}, (dir_ / "stdout.log").string()));
    }
    wait_ready();
  }
  ~NginxProcess() {
    // SIGTERM is nginx's fast shutdown; the ChildProcess kills what is left.
    for (auto &p : processes_)
      p->signal(SIGTERM);
    for (auto &p : processes_)
      p->wait_for(std::chrono::seconds(5));
  }
  NginxProcess(const NginxProcess &) = delete;
  NginxProcess &operator=(const NginxProcess &) = delete;

  int port() const { return port_; }
  std::vector<pid_t> pids() const {
    std::vector<pid_t> out;
    for (const auto &p : processes_)
      out.push_back(p->pid());
    return out;
  }

 private:
  void write_config(const NginxSite &site) {
    const std::string d = dir_.path().string();
    std::ofstream conf(dir_ / "nginx.conf");
    conf << "daemon off;\n"
            "master_process off;\n"
            "worker_rlimit_nofile 20000;\n"
            "pid "
         << d << "/nginx.pid;\n"
         << "events { worker_connections 8192; }\n"
            "http {\n"
            "  access_log off;\n"
            "  default_type text/plain;\n"
            // nginx's default closes a client connection after 1,000
            // requests; wrk would then reconnect in the middle of a run.
            "  keepalive_requests 1000000;\n"
            "  keepalive_timeout 75s;\n"
            // Its temp files in this dir, never the system's /var/lib/nginx.
            "  client_body_temp_path "
         << d << "/body;\n  proxy_temp_path " << d << "/proxy;\n  fastcgi_temp_path " << d
         << "/fastcgi;\n  uwsgi_temp_path " << d << "/uwsgi;\n  scgi_temp_path " << d << "/scgi;\n";
    if (site.proxy_to.empty()) {
      conf << "  server {\n    listen 127.0.0.1:" << port_
           << ";\n    location / { return 200 \"ok\\n\"; }\n  }\n";
    } else {
      // The reverse proxy an SRE would write: HTTP/1.1 to the upstream
      // with a pool of idle keep-alive connections, so no request pays for
      // a connect, as the fault proxy keeps one upstream connection per
      // client connection.
      conf << "  upstream backend {\n    server " << site.proxy_to
           << ";\n    keepalive 64;\n    keepalive_requests 1000000;\n  }\n"
           << "  server {\n    listen 127.0.0.1:" << port_
           << (site.processes > 1 ? " reuseport" : "") << ";\n"
           << "    location / {\n      proxy_pass http://backend;\n"
              "      proxy_http_version 1.1;\n"
              "      proxy_set_header Connection \"\";\n    }\n  }\n";
    }
    conf << "}\n";
    if (!conf.flush()) throw std::runtime_error("nginx: could not write " + d + "/nginx.conf");
  }

  // Ready when the port answers with the upstream's body (through the
  // proxy too), and every process still runs.
  void wait_ready() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    httplib::Client client("127.0.0.1", port_);
    client.set_connection_timeout(1);
    while (true) {
      for (auto &p : processes_)
        if (p->exit_code(std::chrono::milliseconds(0)))
          throw std::runtime_error("nginx exited at start: " + log());
      auto res = client.Get("/");
      if (res && res->status == 200 && res->body == kUpstreamBody) return;
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("nginx did not answer on port " + std::to_string(port_) +
                                 " within 10 s: " + log());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  std::string log() const {
    std::string out;
    for (const char *name : {"error.log", "stdout.log"})
      if (std::filesystem::exists(dir_ / name)) out += test::read_text(dir_ / name);
    return out;
  }

  test::TempDir dir_{"blade-bench-nginx"};
  int port_ = 0;
  std::vector<std::unique_ptr<test::ChildProcess>> processes_;
};

}  // namespace blade::bench
