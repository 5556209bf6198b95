#include "enter_plans.hpp"

#include <blade/plugin.hpp>

namespace blade::cri {

namespace {

constexpr const char *kCgroupMeters = R"({"cpu_meter":"cgroup","mem_meter":"cgroup"})";

// Namespaces and cgroup for one target. The pid namespace is entered
// wherever the fault names or starts processes, so pids given by the user
// are the container's own and what the fault starts dies with it; mnt
// wherever it touches files (the container's rootfs, its /etc/hosts); net
// for the network faults, which then see only the container's interfaces.
struct Entry {
  bool mnt, pid_ns, net, cgroup;
};

Entry entry_for(std::string_view target, std::string_view action) {
  if (target == "cpu" || target == "mem") return {false, true, false, true};
  if (target == "disk") return {true, true, false, action == "burn"};
  if (target == "file" || target == "process" || target == "script" || target == "strace")
    return {true, true, false, false};
  if (target == "network") {
    // dns and dns_down edit the container's /etc/hosts and resolv.conf.
    if (action == "dns" || action == "dns_down") return {true, true, true, false};
    // netem, drop, occupy: qdiscs, nft tables and sockets of the netns. The
    // host's /proc stays in view, so port holders are named by host pids
    // and may be signalled by them (no pid namespace entered).
    return {false, false, true, false};
  }
  throw sdk::NotSupported("target " + std::string(target) +
                          " is not offered inside a container (cri plugin)");
}

}  // namespace

InnerSetup inner_setup(std::string_view target, std::string_view action, const Container &c) {
  const Entry e = entry_for(target, action);
  InnerSetup s;
  s.enter.pid = c.init_pid;
  s.enter.start = c.init_start;
  s.enter.mnt = e.mnt;
  s.enter.pid_ns = e.pid_ns;
  s.enter.net = e.net;
  s.enter.cgroup = e.cgroup;
  if (target == "cpu" || target == "mem") s.config_json = kCgroupMeters;
  return s;
}

void check_offered(std::string_view target, std::string_view action) {
  (void)entry_for(target, action);
}

bool outlives_init(std::string_view target, std::string_view action) {
  // Edited files: the file faults', the script's, /etc/hosts and
  // resolv.conf (dns, dns_down); the fill file of disk fill.
  return target == "file" || target == "script" || (target == "disk" && action == "fill") ||
         (target == "network" && (action == "dns" || action == "dns_down"));
}

bool lives_in_helper(std::string_view target, std::string_view action) {
  return target == "cpu" || target == "mem" || target == "strace" ||
         (target == "disk" && action == "burn") || (target == "network" && action == "occupy");
}

std::string vanished_with_init(std::string_view target, std::string_view action) {
  if (target == "cpu") return "the cpu burners (they ran in the old container's cgroup)";
  if (target == "mem") return "the memory load (it was held in the old container's cgroup)";
  if (target == "process") return "the processes of the old init's pid namespace";
  if (target == "strace")
    return "the traced processes (they lived in the old init's pid namespace)";
  if (target == "network" && action == "dns_down")
    return "the stub resolver (it listened in the old network namespace)";
  if (target == "network" && action != "dns")
    return "the old network namespace, with the fault's qdiscs, nft rules or sockets";
  if (target == "disk" && action == "burn") return "the io burners (in the old container's cgroup)";
  return "nothing (the fault lives in the container's rootfs)";
}

}  // namespace blade::cri
