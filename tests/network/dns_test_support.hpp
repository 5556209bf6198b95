// What the dns tests stand on, none of it the host's own: a private mount
// namespace for the test process (its /etc/hosts and /etc/resolv.conf are
// temp files bind-mounted there, or live in an overlay over /etc), a
// network namespace with its own loopback, and a small DNS server on
// 127.0.0.1:53 in it, UDP and TCP, that is "the" nameserver the private
// resolv.conf names. bladed is started inside both namespaces, so its
// faults edit the private files and its stub resolver binds in the private
// loopback; getaddrinfo of the test runs there too.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "../support/file_text.hpp"
#include "../support/temp_dir.hpp"
#include "netns.hpp"

namespace blade::test::dns {

namespace fs = std::filesystem;

// The test process (and every child it starts) in a mount namespace of its
// own, with nothing propagated back: what it mounts over /etc is seen by
// it and its bladed only. Once per process.
inline void private_mounts() {
  static const bool done = [] {
    if (::unshare(CLONE_NEWNS) != 0)
      throw std::runtime_error(std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno) +
                               " (the dns tests need root to keep the host's /etc untouched)");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      throw std::runtime_error(std::string("mount --make-rprivate /: ") + std::strerror(errno));
    return true;
  }();
  (void)done;
}

inline void write_file(const fs::path &p, const std::string &bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out.flush()) throw std::runtime_error("cannot write " + p.string());
}

// /etc/hosts and /etc/resolv.conf of the test's own, with the given bytes.
//  - Overlay: an overlay (upper layer on a tmpfs) over the whole /etc, so
//    the files are ordinary entries of a directory and a rename over them
//    works, as on a host.
//  - BindFiles: temp files bind-mounted over each, so the files are mount
//    points, as in a container, where a rename over them fails (EBUSY).
class PrivateEtc {
 public:
  enum class Kind { Overlay, BindFiles };

  PrivateEtc(Kind kind, const std::string &hosts, const std::string &resolv_conf) : kind_(kind) {
    private_mounts();
    if (kind == Kind::Overlay) {
      fs::create_directories(dir_ / "layer");
      mount_or_throw("tmpfs", dir_ / "layer", "tmpfs", 0, "size=16m,mode=0755");
      fs::create_directories(dir_ / "layer/upper");
      fs::create_directories(dir_ / "layer/work");
      const std::string opts = "lowerdir=/etc,upperdir=" + (dir_ / "layer/upper").string() +
                               ",workdir=" + (dir_ / "layer/work").string();
      mount_or_throw("overlay", "/etc", "overlay", 0, opts);
      mounted_ = {"/etc", dir_ / "layer"};
      write_file("/etc/hosts", hosts);
      write_file("/etc/resolv.conf", resolv_conf);
    } else {
      write_file(dir_ / "hosts", hosts);
      write_file(dir_ / "resolv.conf", resolv_conf);
      mount_or_throw(dir_ / "hosts", "/etc/hosts", "", MS_BIND, "");
      mounted_.push_back("/etc/hosts");
      mount_or_throw(dir_ / "resolv.conf", "/etc/resolv.conf", "", MS_BIND, "");
      mounted_.push_back("/etc/resolv.conf");
    }
  }
  ~PrivateEtc() {
    for (auto it = mounted_.rbegin(); it != mounted_.rend(); ++it)
      ::umount2(it->c_str(), MNT_DETACH);
  }
  PrivateEtc(const PrivateEtc &) = delete;
  PrivateEtc &operator=(const PrivateEtc &) = delete;

  Kind kind() const { return kind_; }

 private:
  static void mount_or_throw(const fs::path &src, const fs::path &dst, const std::string &type,
                             unsigned long flags, const std::string &opts) {
    if (::mount(src.c_str(), dst.c_str(), type.empty() ? nullptr : type.c_str(), flags,
                opts.empty() ? nullptr : opts.c_str()) != 0)
      throw std::runtime_error("mount " + src.string() + " on " + dst.string() + ": " +
                               std::strerror(errno));
  }

  Kind kind_;
  TempDir dir_{"dns-etc"};
  std::vector<fs::path> mounted_;
};

// A DNS server on 127.0.0.1:53 (UDP and TCP) of the namespace it is made
// in: A records for the names it is given, NXDOMAIN for the rest, and a
// count of the queries per name, so a test sees what reached it.
class TinyDnsServer {
 public:
  explicit TinyDnsServer(std::map<std::string, std::string> a_records)
      : records_(std::move(a_records)) {
    udp_ = bound(SOCK_DGRAM);
    tcp_ = bound(SOCK_STREAM);
    if (::listen(tcp_, 16) != 0 || ::pipe2(stop_, O_CLOEXEC) != 0)
      throw std::runtime_error("tiny dns server: listen/pipe failed");
    thread_ = std::thread([this] { serve(); });
  }
  ~TinyDnsServer() {
    [[maybe_unused]] auto n = ::write(stop_[1], "x", 1);
    thread_.join();
    for (int fd : {udp_, tcp_, stop_[0], stop_[1]})
      ::close(fd);
  }
  TinyDnsServer(const TinyDnsServer &) = delete;
  TinyDnsServer &operator=(const TinyDnsServer &) = delete;

  // Queries for `name` that reached this server, over UDP and TCP.
  int queries(const std::string &name) const {
    std::lock_guard lock(mu_);
    auto it = seen_.find(name);
    return it == seen_.end() ? 0 : it->second;
  }
  int tcp_queries() const { return tcp_count_; }

 private:
  static int bound(int type) {
    const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(53);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0)
      throw std::runtime_error(std::string("tiny dns server: bind 127.0.0.1:53: ") +
                               std::strerror(errno));
    return fd;
  }

  // The answer to `q`: its question, and an A record or NXDOMAIN.
  std::string answer(const std::string &q) {
    if (q.size() < 12) return {};
    std::size_t at = 12;
    std::string name;
    while (at < q.size() && q[at] != 0) {
      const auto len = static_cast<unsigned char>(q[at]);
      if (!name.empty()) name += '.';
      name += q.substr(at + 1, len);
      at += 1 + len;
    }
    at += 1;
    if (at + 4 > q.size()) return {};
    const int qtype =
        (static_cast<unsigned char>(q[at]) << 8) | static_cast<unsigned char>(q[at + 1]);
    at += 4;
    for (auto &c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    {
      std::lock_guard lock(mu_);
      ++seen_[name];
    }
    std::string out = q.substr(0, at);
    out[2] = static_cast<char>(0x84 | (q[2] & 0x01));  // QR, AA, RD as asked
    out[6] = out[7] = out[8] = out[9] = out[10] = out[11] = 0;
    auto it = records_.find(name);
    if (it == records_.end()) {
      out[3] = static_cast<char>(0x83);  // RA, NXDOMAIN
      return out;
    }
    out[3] = static_cast<char>(0x80);
    if (qtype != 1) return out;  // the name has no records of that type
    out[7] = 1;                  // ANCOUNT
    in_addr ip{};
    ::inet_pton(AF_INET, it->second.c_str(), &ip);
    const char rr[] = {'\xc0', '\x0c', 0, 1, 0, 1, 0, 0, 0, 0, 0, 4};
    out.append(rr, sizeof rr);
    out.append(reinterpret_cast<const char *>(&ip), 4);
    return out;
  }

  void serve_tcp_client(int fd) {
    for (;;) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 2000) <= 0) return;
      unsigned char len[2];
      if (::recv(fd, len, 2, MSG_WAITALL) != 2) return;
      std::string q(static_cast<std::size_t>(len[0] << 8 | len[1]), '\0');
      if (::recv(fd, q.data(), q.size(), MSG_WAITALL) != static_cast<ssize_t>(q.size())) return;
      ++tcp_count_;
      const std::string a = answer(q);
      std::string framed = {static_cast<char>(a.size() >> 8), static_cast<char>(a.size() & 0xff)};
      framed += a;
      if (::send(fd, framed.data(), framed.size(), MSG_NOSIGNAL) < 0) return;
    }
  }

  void serve() {
    char buf[4096];
    for (;;) {
      pollfd p[3] = {{stop_[0], POLLIN, 0}, {udp_, POLLIN, 0}, {tcp_, POLLIN, 0}};
      if (::poll(p, 3, -1) < 0) continue;
      if (p[0].revents) return;
      if (p[1].revents) {
        sockaddr_storage from{};
        socklen_t len = sizeof from;
        const ssize_t n =
            ::recvfrom(udp_, buf, sizeof buf, 0, reinterpret_cast<sockaddr *>(&from), &len);
        if (n > 0) {
          const std::string a = answer(std::string(buf, static_cast<std::size_t>(n)));
          ::sendto(udp_, a.data(), a.size(), 0, reinterpret_cast<sockaddr *>(&from), len);
        }
      }
      if (p[2].revents) {
        const int c = ::accept4(tcp_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          serve_tcp_client(c);
          ::close(c);
        }
      }
    }
  }

  std::map<std::string, std::string> records_;
  mutable std::mutex mu_;
  std::map<std::string, int> seen_;
  std::atomic<int> tcp_count_{0};
  int udp_ = -1, tcp_ = -1, stop_[2] = {-1, -1};
  std::thread thread_;
};

// getaddrinfo's first IPv4 address for `name`, or "EAI_AGAIN",
// "EAI_NONAME", or "error <n>: <text>".
inline std::string resolve(const std::string &name) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo *res = nullptr;
  const int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &res);
  if (rc == EAI_AGAIN) return "EAI_AGAIN";
  if (rc == EAI_NONAME) return "EAI_NONAME";
  if (rc != 0) return "error " + std::to_string(rc) + ": " + ::gai_strerror(rc);
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in *>(res->ai_addr)->sin_addr, text, sizeof text);
  ::freeaddrinfo(res);
  return text;
}

// The inode of a path (a rename over it gives a new one).
inline ino_t inode_of(const fs::path &p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

}  // namespace blade::test::dns
