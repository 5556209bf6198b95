// What the network plugin's rows of the crash matrix stand on. Each row's bladed is born
// inside a network namespace the row makes (and, for the dns rows, a mount
// namespace whose /etc is an overlay of the row's own), so no trial touches
// the host's interfaces, ports, qdiscs, firewall or /etc files. The
// snapshots read the kernel and the files back from inside those
// namespaces; `tc` and `nft` are only the tests' way of reading state, never
// what the plugin uses.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../network/netns.hpp"
#include "../support/child_process.hpp"
#include "../support/file_text.hpp"
#include "../support/temp_dir.hpp"
#include "host_state.hpp"

namespace blade::test::crash::network {

namespace fs = std::filesystem;
using nlohmann::json;

// A thread may enter another mount namespace only when it shares its
// filesystem context (cwd, root) with no other thread; once per thread.
inline void own_fs_context() {
  thread_local const bool done = [] {
    if (::unshare(CLONE_FS) != 0)
      throw std::runtime_error(std::string("unshare(CLONE_FS): ") + std::strerror(errno));
    return true;
  }();
  (void)done;
}

// The calling thread inside the mount namespace open as `ns_fd` until
// destruction. Entering a mount namespace moves the cwd to its root, so the
// cwd is put back on both sides.
class EnterMountNs {
 public:
  explicit EnterMountNs(int ns_fd) {
    own_fs_context();
    home_ = ::open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC);
    cwd_ = ::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (home_ < 0 || cwd_ < 0 || ::setns(ns_fd, CLONE_NEWNS) != 0) {
      const std::string why = std::strerror(errno);
      close_all();
      throw std::runtime_error("cannot enter the row's mount namespace: " + why);
    }
    if (::fchdir(cwd_) != 0) std::perror("crash rows: fchdir in the row's mount namespace");
  }
  ~EnterMountNs() {
    // Staying in the row's namespace would only keep the rest of the run
    // away from the host's /etc; say so rather than go on silently.
    if (::setns(home_, CLONE_NEWNS) != 0 || ::fchdir(cwd_) != 0)
      std::perror("crash rows: back to the test's mount namespace");
    close_all();
  }
  EnterMountNs(const EnterMountNs &) = delete;
  EnterMountNs &operator=(const EnterMountNs &) = delete;

 private:
  void close_all() {
    for (int fd : {home_, cwd_})
      if (fd >= 0) ::close(fd);
  }
  int home_ = -1, cwd_ = -1;
};

// A mount namespace of the row's own (made by the calling thread, which
// leaves it at once) where /etc is an overlay with a tmpfs upper layer, and
// /etc/hosts and /etc/resolv.conf hold the given bytes: ordinary entries a
// rename can replace, as on a host. Nothing propagates back. The mounts are
// never unmounted by hand: they go with the namespace when its last holder
// (this object's fd, the row's bladed) is gone, so no umount can ever reach
// the host's own /etc.
class PrivateEtcNs {
 public:
  PrivateEtcNs(const std::string &hosts, const std::string &resolv_conf) {
    own_fs_context();
    const int home = ::open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC);
    const int cwd = ::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (home < 0 || cwd < 0) throw std::runtime_error("cannot open the test's mount namespace");
    std::string failed;
    if (::unshare(CLONE_NEWNS) != 0) {
      failed = std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno) +
               " (the dns rows need root to keep the host's /etc untouched)";
    } else {
      failed = fill(hosts, resolv_conf);
      if (failed.empty()) ns_ = ::open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC);
      if (::setns(home, CLONE_NEWNS) != 0 || ::fchdir(cwd) != 0)
        failed +=
            std::string(" (and back to the test's mount namespace: ") + std::strerror(errno) + ")";
    }
    ::close(home);
    ::close(cwd);
    if (!failed.empty() || ns_ < 0) {
      if (ns_ >= 0) ::close(ns_);
      throw std::runtime_error("private /etc for a dns row: " + failed);
    }
  }
  ~PrivateEtcNs() { ::close(ns_); }
  PrivateEtcNs(const PrivateEtcNs &) = delete;
  PrivateEtcNs &operator=(const PrivateEtcNs &) = delete;

  int fd() const { return ns_; }

 private:
  // Inside the new namespace: "" or what failed.
  std::string fill(const std::string &hosts, const std::string &resolv_conf) {
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      return std::string("mount --make-rprivate /: ") + std::strerror(errno);
    const fs::path layer = dir_ / "layer";
    fs::create_directories(layer);
    if (::mount("tmpfs", layer.c_str(), "tmpfs", 0, "size=16m,mode=0755") != 0)
      return std::string("tmpfs for the overlay: ") + std::strerror(errno);
    fs::create_directories(layer / "upper");
    fs::create_directories(layer / "work");
    const std::string opts = "lowerdir=/etc,upperdir=" + (layer / "upper").string() +
                             ",workdir=" + (layer / "work").string();
    if (::mount("overlay", "/etc", "overlay", 0, opts.c_str()) != 0)
      return std::string("overlay over /etc: ") + std::strerror(errno);
    for (const auto &[path, bytes] :
         {std::pair{"/etc/hosts", &hosts}, std::pair{"/etc/resolv.conf", &resolv_conf}}) {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out << *bytes;
      if (!out.flush()) return std::string("cannot write ") + path;
    }
    return {};
  }

  TempDir dir_{"crash-etc"};
  int ns_ = -1;
};

// What a network row owns: its namespace (and a peer's, a private /etc),
// torn down in reverse order of making.
struct NetWorld {
  net::NetNs ns{"bcrash"};
  std::unique_ptr<PrivateEtcNs> etc;  // dns rows only
};

// The guard a trial holds while it starts, restarts and talks to bladed:
// this thread in the row's network namespace (and mount namespace).
inline std::shared_ptr<void> enter(const NetWorld &w) {
  struct Inside {
    std::unique_ptr<EnterMountNs> mounts;
    std::unique_ptr<net::EnterNetNs> net;
  };
  auto g = std::make_shared<Inside>();
  if (w.etc) g->mounts = std::make_unique<EnterMountNs>(w.etc->fd());
  g->net = std::make_unique<net::EnterNetNs>(w.ns);
  return g;
}

// argv's output, stdout and stderr (no shell; argv[0] an absolute path).
inline std::string capture(const std::vector<std::string> &argv) {
  TempDir dir("crash-capture");
  const fs::path out = dir / "out";
  ChildProcess child(argv, {}, out.string());
  const auto rc = child.exit_code(std::chrono::seconds(20));
  return read_text(out) + (rc == 0 ? "" : "(exit " + (rc ? std::to_string(*rc) : "none") + ")");
}

// Whether a TCP socket of the namespace can bind `port` on every IPv4 and
// on every IPv6 address: "0" or the errno's name. An occupy left holds it.
inline void add_port_bind(HostState &s, const NetWorld &w, std::uint16_t port) {
  net::EnterNetNs inside(w.ns);
  for (const bool v6 : {false, true}) {
    const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = fd < 0 ? errno : 0;
    if (fd >= 0) {
      sockaddr_storage a{};
      socklen_t len = 0;
      if (v6) {
        const int on = 1;
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
        auto *a6 = reinterpret_cast<sockaddr_in6 *>(&a);
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        a6->sin6_addr = in6addr_any;
        len = sizeof *a6;
      } else {
        auto *a4 = reinterpret_cast<sockaddr_in *>(&a);
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        a4->sin_addr.s_addr = htonl(INADDR_ANY);
        len = sizeof *a4;
      }
      rc = ::bind(fd, reinterpret_cast<sockaddr *>(&a), len) == 0 ? 0 : errno;
      ::close(fd);
    }
    s[std::string("bind tcp ") + (v6 ? "[::]" : "0.0.0.0") + ":" + std::to_string(port)] =
        rc == 0 ? "0" : ::strerrorname_np(rc);
  }
}

// A file of the row's private /etc: owner, mode and its bytes as they are
// (newlines shown as \n, so a difference reads on one line).
inline void add_etc_file(HostState &s, const NetWorld &w, const fs::path &file) {
  EnterMountNs inside(w.etc->fd());
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0) {
    s["file " + file.string()] = "absent";
    return;
  }
  std::string shown;
  for (const char c : read_text(file))
    shown += c == '\n' ? std::string("\\n") : std::string(1, c);
  char head[64];
  std::snprintf(head, sizeof head, "mode %o owner %u:%u ", st.st_mode, st.st_uid, st.st_gid);
  s["file " + file.string()] = head + shown;
}

// The qdiscs of `dev` with every option tc decodes (-d), the filters at its
// root and under Blade's classful handle: a root or filter left shows here.
inline void add_tc_state(HostState &s, const NetWorld &w, const std::string &dev) {
  const std::string &ns = w.ns.name();
  s["qdiscs of " + dev] = capture({"/usr/sbin/tc", "-n", ns, "-d", "qdisc", "show", "dev", dev});
  s["filters of " + dev] = capture({"/usr/sbin/tc", "-n", ns, "-d", "filter", "show", "dev", dev});
  s["filters of " + dev + " under b1ad:"] =
      capture({"/usr/sbin/tc", "-n", ns, "-d", "filter", "show", "dev", dev, "parent", "b1ad:"});
}

// The namespace's whole nftables ruleset: a drop table left shows here.
inline void add_nft_ruleset(HostState &s, const NetWorld &w) {
  s["nft ruleset"] =
      capture({"/usr/sbin/ip", "netns", "exec", w.ns.name(), "/usr/sbin/nft", "list", "ruleset"});
}

}  // namespace blade::test::crash::network
