// Shared by the cri plugin's tests in runc containers: a bladed with the
// built cri.so and blade-cri-helper, experiments aimed at a RuncContainer
// (scope cri, the container's id, runtime and private runc root), and what
// must be left when they are over (no helper, no blade table on the host).
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../../support/eventually.hpp"
#include "../../support/file_text.hpp"
#include "../../support/runc_container.hpp"
#include "../../support/temp_dir.hpp"
#include "../../network/traffic.hpp"
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

// A path and, for a directory, what is in it: a failure's message.
inline std::string listing(const std::filesystem::path &p) {
  std::string out = p.string();
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(p, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    out += "\n  " + it->path().lexically_relative(p).string();
  return out;
}

// What a destroy must leave of a fault whose state is named by `text` (an
// experiment uid, a container id): no helper of `d`, and no path under its
// state dir holding `text`. Each leftover path is its own failure, listed,
// so a failure shows what stayed. Only for faults that do write such paths
// while they run (their record, claims, backups): for the others the
// listing could not fail, and a plain CHECK(no_helper_left(d)) says all.
inline void check_nothing_left(const BladedProcess &d, const std::string &text) {
  CHECK(no_helper_left(d));
  for (const auto &p : state_paths_named(d, text))
    FAIL_CHECK("left in the state dir: " << listing(p));
}

// A TCP listener on the host's 127.0.0.1, on a port the kernel picks
// (the sockets of tests/network/traffic.hpp).
class HostListener {
 public:
  HostListener() { REQUIRE(::listen(fd_.get(), 16) == 0); }
  int port() const { return net::bound_port(fd_.get()); }
  // Whether a TCP connect from the host to it completes within `timeout`.
  bool connects(std::chrono::milliseconds timeout = std::chrono::seconds(1)) const {
    return net::connect_ms("127.0.0.1", static_cast<std::uint16_t>(port()), timeout).has_value();
  }

 private:
  net::Fd fd_ = net::bound_socket(SOCK_STREAM, "127.0.0.1");
};

// The container's cpu use in cores over `window`, from its cgroup.
inline double cores_used(const RuncContainer &c, std::chrono::milliseconds window) {
  const auto u0 = c.cpu_usage_ns();
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(window);
  const auto u1 = c.cpu_usage_ns();
  const auto t1 = std::chrono::steady_clock::now();
  return static_cast<double>(u1 - u0) /
         static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
}

// One absolute path that names a file in the container's rootfs and, with
// other bytes, the same path on the host (under a temp dir of the test's):
// a fault that ran on the host instead would take the host's.
struct TwinFile {
  explicit TwinFile(const std::string &prefix) : dir(prefix) {}
  TempDir dir;
  std::filesystem::path path = dir / "victim.conf";
};

// A 0.5-cpu runc container whose rootfs holds a TwinFile: where the tests
// of a file delete and a cpu load outliving something (the container, the
// daemon, the helper) start from.
struct TwinContainer {
  static constexpr const char *kInside = "inside the container\n";
  explicit TwinContainer(const std::string &prefix) : twin(prefix), ctr(options(twin.path)) {}
  TwinFile twin;
  RuncContainer ctr;
  // The container's file as the host sees it, through its init's root.
  std::filesystem::path inside() const {
    return ctr.proc() / "root" / twin.path.relative_path();
  }

 private:
  static RuncOptions options(const std::filesystem::path &path) {
    RuncOptions o;
    o.files[path.string()] = kInside;
    o.cpus = 0.5;
    return o;
  }
};

using blade::test::Answer;
using blade::test::destroy;

}  // namespace blade::test::cri
