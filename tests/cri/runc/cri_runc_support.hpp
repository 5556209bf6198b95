// Shared by the cri plugin's tests in runc containers: a bladed with the
// built cri.so and blade-cri-helper, experiments aimed at a RuncContainer
// (scope cri, the container's id, runtime and private runc root), and what
// must be left when they are over (no helper, no blade table on the host).
#pragma once

#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../../support/eventually.hpp"
#include "../../support/file_text.hpp"
#include "../../support/runc_container.hpp"
#include "../../support/temp_dir.hpp"
#include "bladed_process.hpp"
#include "experiment_calls.hpp"

namespace blade::test::cri {

using nlohmann::json;

// A bladed loading only cri.so, with blade-cri-helper beside it in its
// plugin dir (where cri.so looks for the helper by default).
inline BladedOptions cri_options(std::vector<std::string> args = {}) {
  BladedOptions o = only_plugin(std::filesystem::path(BLADE_BUILT_PLUGIN_DIR) / "cri.so",
                                std::move(args));
  o.plugin_files.emplace_back(BLADE_CRI_HELPER_PATH);
  return o;
}

// The container flags that name `c`: its full id, the runtime, and the
// private runc root it was started under.
inline json container_flags(const RuncContainer &c, json flags = json::object()) {
  flags["container-id"] = c.id();
  flags["container-runtime"] = "runc";
  flags["container-state-root"] = c.root().string();
  return flags;
}

// POST /v1/experiments of `target action` in scope cri, in `c`.
inline Answer create_in(httplib::Client &client, const RuncContainer &c, const std::string &target,
                        const std::string &action, json flags = json::object()) {
  return create(client, json{{"scope", "cri"},
                             {"target", target},
                             {"action", action},
                             {"flags", container_flags(c, std::move(flags))}});
}

// The pids of the blade-cri-helper processes `d` started (their
// executable is the copy in its plugin dir), found by /proc/<pid>/exe.
inline std::vector<pid_t> helper_pids(const BladedProcess &d) {
  const auto exe = (d.dir / "plugins" / "blade-cri-helper").string();
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto &e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto target = std::filesystem::read_symlink(e.path() / "exe", ec);
    if (!ec && target.string() == exe) out.push_back(std::stoi(name));
  }
  return out;
}

// Whether no helper of `d` is left, waiting a little for one on its way out.
inline bool no_helper_left(const BladedProcess &d) {
  return eventually([&] { return helper_pids(d).empty(); }, std::chrono::seconds(5));
}

// What `argv` prints (stdout and stderr), run without a shell.
inline std::string capture(const std::vector<std::string> &argv) {
  TempDir t("cri-capture");
  const auto out = t / "out";
  const auto code = run_logged(argv, out, std::chrono::seconds(10));
  REQUIRE_MESSAGE(code == 0, argv[0] << " failed: " << read_text(out));
  return read_text(out);
}

// The nftables tables of the host's network namespace, and of the one of
// process `pid` (entered with nsenter, util-linux), one
// "table <family> <name>" a line.
inline std::string host_nft_tables() {
  return capture({find_program("nft").string(), "list", "tables"});
}
inline std::string nft_tables_of(pid_t pid) {
  return capture({find_program("nsenter").string(), "-t", std::to_string(pid), "-n",
                  find_program("nft").string(), "list", "tables"});
}
inline bool has_blade_table(const std::string &tables) {
  return tables.find("table inet blade_") != std::string::npos;
}

// Every path under the daemon's state dir whose name holds `text` (an
// experiment uid, a container id): what a destroy must not leave.
inline std::vector<std::filesystem::path> state_paths_named(const BladedProcess &d,
                                                            const std::string &text) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(d.dir / "state", ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    if (it->path().filename().string().find(text) != std::string::npos) out.push_back(it->path());
  return out;
}

// A TCP listener on the host's 127.0.0.1, on a port the kernel picks.
class HostListener {
 public:
  HostListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
  }
  ~HostListener() { ::close(fd_); }
  HostListener(const HostListener &) = delete;
  HostListener &operator=(const HostListener &) = delete;
  int port() const { return port_; }

  // Whether a TCP connect from the host to it completes within `timeout`.
  bool connects(std::chrono::milliseconds timeout = std::chrono::seconds(1)) const {
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port_));
    bool ok = ::connect(s, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
    if (!ok && errno == EINPROGRESS) {
      pollfd p{s, POLLOUT, 0};
      int err = 0;
      socklen_t len = sizeof err;
      ok = ::poll(&p, 1, static_cast<int>(timeout.count())) == 1 &&
           ::getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    }
    ::close(s);
    return ok;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

using blade::test::Answer;
using blade::test::destroy;

}  // namespace blade::test::cri
