// What the http proxy's tests put around it on loopback: a real upstream
// (cpp-httplib, with routes for echo, large and chunked bodies, bodies
// counted on the way in, and chosen status codes), a raw HTTP/1.1
// connection for exact checks of one keep-alive connection, latency
// figures, and the compiled rule set's JSON for a few rules.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

namespace blade::test::http {

// The upstream every test proxies to, on 127.0.0.1 and a port of its own.
//  GET  /big/length/<n>   n bytes with Content-Length, made as they are sent
//  GET  /big/chunked/<n>  n bytes chunked, 64 KiB at a time
//  GET  /status/<code>    an empty answer with that status
//  POST /count            the request body's size and framing, read as it comes:
//                         "<bytes> <chunked|length>"
//  any other path         200 "<METHOD> <target>" (HEAD: the same headers)
class Upstream {
 public:
  Upstream() {
    // One thread per open connection: the tests keep up to ~20 alive.
    server_.new_task_queue = [] { return new httplib::ThreadPool(64); };
    server_.set_keep_alive_max_count(1'000'000);
    // As production servers do: without it the answer's header and body go
    // in two segments, the second held by Nagle until the first is acked
    // (up to 40 ms of delayed ACK), which would swamp every latency figure.
    server_.set_tcp_nodelay(true);
    server_.set_keep_alive_timeout(30);
    server_.Get(R"(/big/length/(\d+))", [](const httplib::Request &req, httplib::Response &res) {
      const std::size_t n = std::stoull(req.matches[1]);
      res.set_content_provider(n, "application/octet-stream",
                               [](std::size_t offset, std::size_t length, httplib::DataSink &sink) {
                                 static const std::string block(64 * 1024, 'x');
                                 (void)offset;
                                 return sink.write(block.data(), std::min(length, block.size()));
                               });
    });
    server_.Get(R"(/big/chunked/(\d+))", [](const httplib::Request &req, httplib::Response &res) {
      const std::size_t n = std::stoull(req.matches[1]);
      res.set_chunked_content_provider(
          "application/octet-stream", [n](std::size_t offset, httplib::DataSink &sink) {
            static const std::string block(64 * 1024, 'y');
            if (offset >= n) {
              sink.done();
              return true;
            }
            return sink.write(block.data(), std::min(n - offset, block.size()));
          });
    });
    server_.Get(R"(/status/(\d+))", [](const httplib::Request &req, httplib::Response &res) {
      res.status = std::stoi(req.matches[1]);
    });
    server_.Post("/count", [this](const httplib::Request &req, httplib::Response &res,
                                  const httplib::ContentReader &reader) {
      std::size_t bytes = 0;
      reader([&](const char *, std::size_t n) {
        bytes += n;
        return true;
      });
      ++requests_;
      const bool chunked = req.get_header_value("Transfer-Encoding") == "chunked";
      res.set_content(std::to_string(bytes) + (chunked ? " chunked" : " length"), "text/plain");
    });
    auto echo = [this](const httplib::Request &req, httplib::Response &res) {
      ++requests_;
      std::string hop;
      for (const char *name : {"Connection", "Keep-Alive", "TE", "Upgrade", "Proxy-Connection", "X-Hop"})
        if (req.has_header(name)) hop += std::string(name) + ";";
      res.set_header("X-Hop-Seen", hop);
      res.set_content(req.method + " " + req.target, "text/plain");
    };
    server_.Get(".*", echo);
    server_.Post(".*", echo);
    server_.Put(".*", echo);
    server_.Delete(".*", echo);
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 500 && !server_.is_running(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ~Upstream() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::size_t requests() const { return requests_; }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<std::size_t> requests_{0};
};

// A TCP socket bound to 127.0.0.1 on an ephemeral port, closed with it.
struct LoopbackSocket {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int port = 0;
  LoopbackSocket() {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~LoopbackSocket() { ::close(fd); }
  LoopbackSocket(const LoopbackSocket &) = delete;
  LoopbackSocket &operator=(const LoopbackSocket &) = delete;
};

// A port nothing listens on (bound, then closed; the kernel hands out
// ephemeral ports in turn, so it stays free for the test's few seconds).
inline int free_port() { return LoopbackSocket().port; }

// A keep-alive client of 127.0.0.1:port (Nagle off, as the upstream).
inline httplib::Client keep_alive_client(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_keep_alive(true);
  c.set_tcp_nodelay(true);
  c.set_connection_timeout(5);
  c.set_read_timeout(10);
  return c;
}

// True when a TCP connect to 127.0.0.1:port is accepted.
inline bool port_open(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// One answer as read off the wire.
struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  bool closed = false;  // the connection ended (instead of an answer)
  std::string header(const std::string &name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// One client TCP connection speaking HTTP/1.1 by hand, so a test sees
// exactly what went over one keep-alive connection.
class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawConnection() { ::close(fd_); }
  RawConnection(const RawConnection &) = delete;
  RawConnection &operator=(const RawConnection &) = delete;

  void send(const std::string &bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      REQUIRE(n > 0);
      off += static_cast<std::size_t>(n);
    }
  }

  // Reads one answer (a HEAD's has no body, as `head` says).
  RawResponse read_response(bool head = false) {
    RawResponse r;
    std::string line;
    if (!read_line(line)) {
      r.closed = true;
      return r;
    }
    if (line.size() < 12 || line.rfind("HTTP/1.", 0) != 0) {
      r.closed = true;
      return r;
    }
    r.status = std::stoi(line.substr(9, 3));
    while (read_line(line) && !line.empty()) {
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      r.headers[name] = value;
    }
    if (head || r.status == 204 || r.status == 304 || r.status / 100 == 1) return r;
    if (r.header("transfer-encoding") == "chunked") {
      for (;;) {
        if (!read_line(line)) break;
        const std::size_t size = std::stoul(line, nullptr, 16);
        if (size == 0) {
          while (read_line(line) && !line.empty()) {
          }
          break;
        }
        r.body += read_exact(size);
        read_line(line);
      }
    } else if (!r.header("content-length").empty()) {
      r.body = read_exact(std::stoul(r.header("content-length")));
    } else {
      char buf[4096];
      for (;;) {
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) break;
        r.body.append(buf, static_cast<std::size_t>(n));
      }
    }
    return r;
  }

  // True when the peer closed the connection (read returns 0 within `wait`).
  bool peer_closed(std::chrono::milliseconds wait = std::chrono::seconds(2)) {
    timeval tv{static_cast<time_t>(wait.count() / 1000),
               static_cast<suseconds_t>((wait.count() % 1000) * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c;
    const ssize_t n = pending_.empty() ? ::recv(fd_, &c, 1, 0) : 1;
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

 private:
  bool fill() {
    char buf[16384];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    pending_.append(buf, static_cast<std::size_t>(n));
    return true;
  }
  bool read_line(std::string &line) {
    for (;;) {
      const auto end = pending_.find("\r\n");
      if (end != std::string::npos) {
        line = pending_.substr(0, end);
        pending_.erase(0, end + 2);
        return true;
      }
      if (!fill()) return false;
    }
  }
  std::string read_exact(std::size_t n) {
    while (pending_.size() < n)
      if (!fill()) break;
    std::string out = pending_.substr(0, n);
    pending_.erase(0, std::min(n, pending_.size()));
    return out;
  }

  int fd_ = -1;
  std::string pending_;
};

// The value at quantile q (0..1) of `v` (sorted here).
inline double quantile(std::vector<double> v, double q) {
  REQUIRE(!v.empty());
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// This process's peak resident memory (VmHWM) and current (VmRSS), KiB.
inline long long status_kib(const std::string &key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1));
  return -1;
}
// Resets VmHWM to the current VmRSS (Linux's clear_refs 5).
inline bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

inline std::int64_t epoch_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// One rule of a compiled rule set (the format of the HTTP fault docs).
inline nlohmann::json rule(const std::string &id, nlohmann::json match, nlohmann::json fault,
                           int priority = 0, nlohmann::json active_from_ms = 0,
                           nlohmann::json active_until_ms = nullptr) {
  const auto slash = id.find('/');
  return {{"id", id},
          {"policy", id.substr(0, slash)},
          {"index", std::stoi(id.substr(slash + 1))},
          {"priority", priority},
          {"match", std::move(match)},
          {"fault", std::move(fault)},
          {"active_from_ms", std::move(active_from_ms)},
          {"active_until_ms", std::move(active_until_ms)}};
}
// A rule set of `rules` with `version` (16 hex digits).
inline std::string rule_set(const std::string &version, const nlohmann::json &rules) {
  return nlohmann::json{{"version", version}, {"rules", rules}}.dump();
}
inline nlohmann::json abort_fault(int status, double percentage = 100) {
  return {{"percentage", percentage}, {"abort", {{"status", status}, {"body", "injected"}}}};
}

}  // namespace blade::test::http
