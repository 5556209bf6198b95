// The crash tests' table: one row per fault type, each giving the create
// request, what of the host that fault can change (a snapshot taken before
// the create and after the restart that rolled it back), and the target it
// acts on, set up fresh for every trial and torn down after it. A new
// plugin's fault is one more row in fault_rows(); the matrix finds its
// failpoints on its own.
#pragma once

#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../disk/disk_test_support.hpp"
#include "../os/os_test_support.hpp"
#include "../support/meminfo.hpp"
#include "host_state.hpp"
#include "network_world.hpp"

namespace blade::test::crash {

using nlohmann::json;

// One trial's target. `resources` own what setup made (temp dirs, mounts,
// processes); dropping them is the teardown.
struct Fixture {
  // The POST /v1/experiments body, made just before it is sent (a mem target
  // depends on the memory available then).
  std::function<json()> request;
  std::function<HostState()> snapshot;
  std::shared_ptr<void> resources;
  // For a row whose target lives in namespaces of its own (the network
  // rows): puts the calling thread inside them until the guard it returns
  // is dropped. The trial holds it while it starts bladed, talks to it and
  // restarts it, so the daemon is born there. Empty: the test's own.
  std::function<std::shared_ptr<void>()> enter = {};
  // The snapshot must differ from `before` while the plain run's fault is
  // active: proof that it reads where the fault acts (a snapshot of the
  // wrong namespace would pass every trial). Set by the network rows.
  bool snapshot_sees_fault = false;
};

struct FaultRow {
  std::string name;  // "disk fill": how reports and BLADE_SOAK_ROWS name it
  std::function<Fixture()> setup;
};

// The built plugins every crash test's bladed loads.
inline std::vector<fs::path> crash_plugins() {
  const fs::path dir = BLADE_BUILT_PLUGIN_DIR;
  return {dir / "os.so", dir / "disk.so", dir / "network.so"};
}

namespace rows {

inline const std::string kScript =
    "#!/bin/sh\n"
    "start() {\n"
    "  echo started\n"
    "}\n"
    "start\n";

// A directory with a config file owned by 1234 with an odd mode and an old
// mtime (so a restore that loses any of them shows), and a script.
inline std::shared_ptr<TempDir> file_target() {
  auto t = std::make_shared<TempDir>("crash-file");
  os::make_file(*t / "app.conf", "key: value\n", 0604);
  os::make_file(*t / "svc.sh", kScript, 0750);
  return t;
}

// A row for a fault on the files of file_target(); `flags` gets its dir.
inline FaultRow file_row(const std::string &target, const std::string &action,
                         std::function<json(const fs::path &)> flags) {
  return {target + " " + action, [=] {
            auto t = file_target();
            const fs::path dir = t->path();
            return Fixture{[=] { return json{{"target", target}, {"action", action},
                                             {"flags", flags(dir)}}; },
                           [dir] {
                             HostState s;
                             add_tree(s, dir);
                             return s;
                           },
                           t};
          }};
}

// A tmpfs of its own, so its free space is this trial's alone; `dir_flag`
// names it in the request.
inline FaultRow tmpfs_row(const std::string &target, const std::string &action,
                          const std::string &dir_flag, json flags) {
  return {target + " " + action, [=] {
            auto t = std::make_shared<disk::ScratchFs>("tmpfs", 64);
            const fs::path dir = t->path();
            json f = flags;
            f[dir_flag] = dir.string();
            return Fixture{[=] { return json{{"target", target}, {"action", action}, {"flags", f}}; },
                           [dir] {
                             HostState s;
                             add_tree(s, dir);
                             add_free_space(s, dir);
                             return s;
                           },
                           t};
          }};
}

inline FaultRow disk_row(const std::string &action, json flags) {
  return tmpfs_row("disk", action, "path", std::move(flags));
}

// The dns rows' files, a host's usual lines; "the" nameserver is one
// nobody answers at (dns_down reads it and forwards to it, no query is made).
inline const std::string kHosts =
    "127.0.0.1\tlocalhost\n# the row's own hosts file\n::1 localhost\n";
inline const std::string kResolvConf =
    "# the row's own resolv.conf\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n";

// A network row: a namespace of its own (and a private /etc with
// `private_etc`), `prepare` run on it before the snapshot, `facts` what the
// snapshot reads back from inside it.
inline FaultRow network_row(const std::string &action, json flags, bool private_etc,
                            std::function<void(const network::NetWorld &)> prepare,
                            std::function<void(HostState &, const network::NetWorld &)> facts) {
  return {"network " + action, [=] {
            auto w = std::make_shared<network::NetWorld>();
            if (private_etc) w->etc = std::make_unique<network::PrivateEtcNs>(kHosts, kResolvConf);
            if (prepare) prepare(*w);
            return Fixture{
                [=] {
                  return json{{"target", "network"}, {"action", action}, {"flags", flags}};
                },
                [w, facts] {
                  HostState s;
                  facts(s, *w);
                  return s;
                },
                w, [w] { return network::enter(*w); }, true};
          }};
}

inline void add_etc_files(HostState &s, const network::NetWorld &w) {
  network::add_etc_file(s, w, "/etc/hosts");
  network::add_etc_file(s, w, "/etc/resolv.conf");
}

// A veth pair inside the row's namespace, both ends up: the interface of
// the qdisc rows (no other namespace needed, nothing is sent).
inline void add_veth(const network::NetWorld &w) {
  net::must({"ip", "-n", w.ns.name(), "link", "add", "bcrash0", "type", "veth", "peer", "name",
             "bcrash1"});
  net::must({"ip", "-n", w.ns.name(), "link", "set", "bcrash0", "up"});
  net::must({"ip", "-n", w.ns.name(), "link", "set", "bcrash1", "up"});
}

}  // namespace rows

inline const std::vector<FaultRow> &fault_rows() {
  using rows::file_row;
  static const std::vector<FaultRow> table = {
      file_row("file", "add",
               [](const fs::path &d) {
                 return json{{"filepath", (d / "added.txt").string()}, {"content", "added"}};
               }),
      file_row("file", "append",
               [](const fs::path &d) {
                 return json{{"filepath", (d / "app.conf").string()}, {"content", "appended"}};
               }),
      file_row("file", "chmod",
               [](const fs::path &d) {
                 return json{{"filepath", (d / "app.conf").string()}, {"mark", "000"}};
               }),
      file_row("file", "delete",
               [](const fs::path &d) { return json{{"filepath", (d / "app.conf").string()}}; }),
      file_row("file", "move",
               [](const fs::path &d) {
                 return json{{"filepath", (d / "app.conf").string()},
                             {"target", (d / "moved/here/").string()},
                             {"auto-create-dir", true}};
               }),
      file_row("script", "delay",
               [](const fs::path &d) {
                 return json{
                     {"file", (d / "svc.sh").string()}, {"function-name", "start"}, {"time", 10}};
               }),
      file_row("script", "exit",
               [](const fs::path &d) {
                 return json{{"file", (d / "svc.sh").string()},
                             {"function-name", "start"},
                             {"exit-code", 3}};
               }),
      {"process stop",
       [] {
         auto sleepers = std::make_shared<os::Sleepers>();
         const pid_t pid = sleepers->start().pid();
         // Asleep before the snapshot: a freshly forked child may still run.
         REQUIRE(eventually([&] { return process_state(pid) == 'S'; }));
         return Fixture{[name = sleepers->name] {
                          return json{{"target", "process"},
                                      {"action", "stop"},
                                      {"flags", {{"process", name}}}};
                        },
                        [pid] {
                          HostState s;
                          add_process(s, pid);
                          return s;
                        },
                        sleepers};
       }},
      {"process load",
       [] {
         return Fixture{[] {
                          return json{{"target", "process"},
                                      {"action", "load"},
                                      {"flags", {{"count", 3}}}};
                        },
                        [] {
                          // Every live process a process load started (its
                          // argv[0]); a killed one left as a zombie has none.
                          HostState s;
                          for (const auto &e : fs::directory_iterator("/proc")) {
                            const std::string cmdline = read_text(e.path() / "cmdline");
                            if (cmdline.rfind("blade-process-load-", 0) == 0)
                              s["process load " + e.path().filename().string()] = "alive";
                          }
                          return s;
                        },
                        nullptr};
       }},
      {"strace delay",
       [] {
         auto sleepers = std::make_shared<os::Sleepers>();
         const pid_t pid = sleepers->start().pid();
         REQUIRE(eventually([&] { return process_state(pid) == 'S'; }));
         return Fixture{[pid] {
                          return json{{"target", "strace"},
                                      {"action", "delay"},
                                      {"flags",
                                       {{"pid", std::to_string(pid)},
                                        {"syscall-name", "nanosleep,clock_nanosleep"},
                                        {"time", "10ms"},
                                        {"delay-loc", "enter"}}}};
                        },
                        [pid] {
                          HostState s;
                          add_process(s, pid);
                          add_tracer(s, pid);
                          return s;
                        },
                        sleepers};
       }},
      {"mem load cache",
       [] {
         return Fixture{[] {
                          // 64 MB above what is available now, filled at 1 GB/s.
                          const auto reserve = meminfo_mb("MemAvailable") - 64;
                          return json{{"target", "mem"},
                                      {"action", "load"},
                                      {"flags",
                                       {{"mode", "cache"},
                                        {"reserve", std::to_string(reserve)},
                                        {"rate", "1024"}}}};
                        },
                        [] {
                          HostState s;
                          add_shm(s, "blade-mem-");
                          return s;
                        },
                        nullptr};
       }},
      rows::disk_row("fill", {{"size", "8"}}),
      rows::disk_row("burn", {{"read", true}, {"write", true}, {"size", "1"}}),
      rows::tmpfs_row("file", "fdleak", "directory", {{"percent", "25"}}),
      // The network rows, each in a namespace of its own (network_world.hpp).
      rows::network_row(
          "occupy", {{"port", "18123"}}, false, nullptr,
          [](HostState &s, const network::NetWorld &w) { network::add_port_bind(s, w, 18123); }),
      rows::network_row("dns", {{"domain", "www.blade-crash.test"}, {"ip", "10.0.0.1"}}, true,
                        nullptr, rows::add_etc_files),
      rows::network_row("dns_down", {{"allow_domain", "allowed.test"}}, true, nullptr,
                        rows::add_etc_files),
      // One nftables table named for the experiment, in the row's namespace.
      rows::network_row("drop", {{"destination-port", "9"}, {"protocol", "tcp"}}, false, nullptr,
                        [](HostState &s, const network::NetWorld &w) {
                          network::add_nft_ruleset(s, w);
                        }),
      // The netem family on the host: rate only, a tbf root (the host
      // kernel has sch_tbf; sch_netem and sch_prio exist only in the UML
      // guest, so delay, loss, duplicate, corrupt and reorder, and every
      // filtered form, stay out of this matrix: the netem tests kill bladed
      // at their failpoints inside the guest). Unfiltered, so the control
      // path is included: the daemon listens on lo, not on this veth.
      rows::network_row(
          "rate", {{"interface", "bcrash0"}, {"rate", "1mbit"}, {"include-control-ports", "true"}},
          false, rows::add_veth,
          [](HostState &s, const network::NetWorld &w) { network::add_tc_state(s, w, "bcrash0"); }),
  };
  return table;
}

}  // namespace blade::test::crash
