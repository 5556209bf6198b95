// The cgroup meter of cpu fullload and mem load (the host's config
// {"cpu_meter":"cgroup","mem_meter":"cgroup"}, as the cri helper gives it
// inside a container). First the readers, on cgroup v1 and v2 layouts this
// test writes under a temporary root; then for real: this test process
// moves into cgroup v1 directories it creates (a 0.5-cpu quota, a memory
// limit), runs the built os.so in the SDK's host stand-in with the cgroup
// meters, and measures the cgroup's own cpuacct.usage and
// memory.usage_in_bytes. Every cgroup is removed after, and checked gone.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include <doctest/doctest.h>
#include <blade/plugin_test.hpp>
#include <nlohmann/json.hpp>

#include "../../plugins/common/cgroup_paths.hpp"
#include "../../plugins/os/src/cpu_meter.hpp"
#include "../../plugins/os/src/mem_figures.hpp"
#include "../../plugins/os/src/meter_config.hpp"

namespace fs = std::filesystem;
namespace bt = blade::sdk::testing;
namespace cg = blade::plugins::cgroup;
using nlohmann::json;
using namespace std::chrono_literals;
using namespace blade::os;

namespace {

const std::string kOsPlugin = std::string(BLADE_BUILT_PLUGIN_DIR) + "/os.so";

void put(const fs::path &p, const std::string &text) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

std::string slurp(const fs::path &p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// /proc/self/mountinfo of a hybrid host like this one: every v1 controller
// on its own mount, an empty cgroup2 at unified, a space in one mount point.
constexpr const char *kHybridMounts =
    "25 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
    "31 25 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "40 31 0:37 / /sys/fs/cgroup/sys\\040temd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

constexpr const char *kPod = "/kubepods/pod1";
constexpr const char *kCtr = "/kubepods/pod1/ctr";

// A v1 layout under `root`: the process in kCtr of cpu, cpuacct and memory.
void v1_layout(const fs::path &root) {
  put(root / "proc/self/mountinfo", kHybridMounts);
  put(root / "proc/self/cgroup",
      "10:name=systemd:/user.slice\n"
      "4:memory:/kubepods/pod1/ctr\n"
      "2:cpuacct:/kubepods/pod1/ctr\n"
      "1:cpu:/kubepods/pod1/ctr\n"
      "0::/\n");
  const fs::path cpu = root / "sys/fs/cgroup/cpu";
  put(cpu / "cpu.cfs_quota_us", "-1\n");
  put(cpu / "cpu.cfs_period_us", "100000\n");
  put(cpu / ("." + std::string(kPod)) / "cpu.cfs_quota_us", "150000\n");
  put(cpu / ("." + std::string(kPod)) / "cpu.cfs_period_us", "100000\n");
  put(cpu / ("." + std::string(kCtr)) / "cpu.cfs_quota_us", "50000\n");
  put(cpu / ("." + std::string(kCtr)) / "cpu.cfs_period_us", "100000\n");
  put(root / "sys/fs/cgroup/cpuacct" / ("." + std::string(kCtr)) / "cpuacct.usage", "123456789\n");
  const fs::path mem = root / "sys/fs/cgroup/memory" / ("." + std::string(kCtr));
  put(mem / "memory.limit_in_bytes", std::to_string(512 * kMiB) + "\n");
  put(mem / "memory.usage_in_bytes", std::to_string(100 * kMiB) + "\n");
  put(mem / "memory.stat",
      "cache 1000\nrss 5000\ntotal_cache " + std::to_string(20 * kMiB) + "\ntotal_rss 80\n");
}

// A v2-only layout under `root`: the process in /system.slice/ctr.scope.
void v2_layout(const fs::path &root) {
  put(root / "proc/self/mountinfo",
      "25 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
      "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
  put(root / "proc/self/cgroup", "0::/system.slice/ctr.scope\n");
  const fs::path dir = root / "sys/fs/cgroup/system.slice/ctr.scope";
  put(dir / "cpu.max", "25000 100000\n");
  put(dir / "cpu.stat", "usage_usec 5000\nuser_usec 4000\nsystem_usec 1000\n");
  put(root / "sys/fs/cgroup/system.slice/cpu.max", "max 100000\n");
  put(dir / "memory.max", "max\n");
  put(dir / "memory.current", std::to_string(64 * kMiB) + "\n");
  put(dir / "memory.stat", "anon 1\nfile " + std::to_string(8 * kMiB) + "\nkernel 3\n");
}

// A cgroup v1 directory this test makes, as a child of the cgroup the test
// runs in, in the hierarchy of `controller`: /sys/fs/cgroup/cpu/blade-meter-<pid>
// here. enter() moves this whole process in; the destructor moves it back
// to where it was and removes the directory (checked by the tests).
class TestCgroup {
 public:
  explicit TestCgroup(const std::string &controller) {
    const auto where = cg::Placement::of();
    if (!where) throw std::runtime_error("cannot read /proc/self/cgroup or /proc/self/mountinfo");
    const auto parent = where->v1(controller);
    if (!parent)
      throw std::runtime_error("this test needs a mounted cgroup v1 '" + controller +
                               "' hierarchy (a hybrid or v1 host) and finds none");
    parent_ = *parent;
    dir_ = parent_ + "/blade-meter-" + std::to_string(::getpid());
    std::error_code ec;
    fs::remove(dir_, ec);  // a leftover of an earlier run with this pid, when empty
    if (!fs::create_directory(dir_, ec))
      throw std::runtime_error("cannot create " + dir_ + ": " + ec.message() + " (needs root)");
  }
  TestCgroup(const TestCgroup &) = delete;
  TestCgroup &operator=(const TestCgroup &) = delete;
  ~TestCgroup() {
    if (entered_) write(parent_ + "/cgroup.procs", std::to_string(::getpid()));
    // A killed holder may take a moment to be uncharged and leave.
    for (int i = 0; i < 50 && ::rmdir(dir_.c_str()) != 0; ++i)
      std::this_thread::sleep_for(20ms);
  }
  void set(const std::string &file, const std::string &value) const {
    write(dir_ + "/" + file, value);
  }
  void enter() {
    write(dir_ + "/cgroup.procs", std::to_string(::getpid()));
    entered_ = true;
  }
  std::uint64_t number(const std::string &file) const {
    return std::stoull(slurp(dir_ + "/" + file));
  }
  const std::string &dir() const { return dir_; }

 private:
  static void write(const std::string &path, const std::string &value) {
    std::ofstream out(path);
    out << value << std::flush;
    if (!out) throw std::runtime_error("cannot write " + value + " to " + path);
  }
  std::string parent_, dir_;
  bool entered_ = false;
};

// The cgroup's use, in cores, over 3 s once a load has had 2 s to settle
// (the loop judges a one-second window).
double settled_cores(const TestCgroup &acct) {
  std::this_thread::sleep_for(2s);
  const auto u0 = acct.number("cpuacct.usage");
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(3s);
  const auto u1 = acct.number("cpuacct.usage");
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return static_cast<double>(u1 - u0) / 1e9 / wall;
}

// Another process of the cgroup (a child inherits it): burns 10 ms of every
// 100 ms, about 0.1 of a core, until destroyed (killed and reaped).
class Neighbour {
 public:
  Neighbour() {
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      for (;;) {
        timespec start{}, now{};
        ::clock_gettime(CLOCK_MONOTONIC, &start);
        do {
          ::clock_gettime(CLOCK_MONOTONIC, &now);
        } while ((now.tv_sec - start.tv_sec) * 1'000'000'000L + (now.tv_nsec - start.tv_nsec) <
                 10'000'000L);
        timespec rest{0, 90'000'000L};
        ::nanosleep(&rest, nullptr);
      }
    }
  }
  Neighbour(const Neighbour &) = delete;
  Neighbour &operator=(const Neighbour &) = delete;
  ~Neighbour() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  // Its cpu time so far (the first field of schedstat), in seconds.
  double cpu_seconds() const {
    return static_cast<double>(std::stoull(slurp("/proc/" + std::to_string(pid_) + "/schedstat"))) /
           1e9;
  }

 private:
  pid_t pid_ = -1;
};

std::size_t thread_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto &e : fs::directory_iterator("/proc/self/task"))
    ++n;
  return n;
}

// A layout written under a temporary root, removed with it.
struct Laid {
  bt::TempDir tmp;
  const fs::path root{tmp.path()};
  explicit Laid(void (*lay)(const fs::path &)) { lay(root); }
};

MemInfo host_figures(std::uint64_t total, std::uint64_t available) {
  MemInfo h;
  h.total = total;
  h.free = available;
  h.available = available;
  h.floor = 256 * kMiB;
  return h;
}

}  // namespace

TEST_CASE("cgroup placement: /proc/<pid>/cgroup lines and cgroup mounts") {
  const auto members = cg::parse_memberships("4:cpu,cpuacct:/a:b/c\n0::/x\n1:name=systemd:/\n");
  REQUIRE(members.size() == 3);
  CHECK(members[0].hierarchy == "4");
  CHECK(members[0].controllers == std::vector<std::string>{"cpu", "cpuacct"});
  CHECK(members[0].path == "/a:b/c");  // a ':' in the path stays in it
  CHECK(members[1].controllers.empty());
  CHECK(members[1].path == "/x");

  const auto mounts = cg::parse_mounts(kHybridMounts);
  REQUIRE(mounts.size() == 5);  // the ext4 and tmpfs lines are not cgroups
  CHECK(mounts[0].mount_point == "/sys/fs/cgroup/cpu");
  CHECK(mounts[0].options == std::vector<std::string>{"rw", "cpu"});
  CHECK(mounts[3].mount_point == "/sys/fs/cgroup/sys temd");  // \040 unescaped
  CHECK(mounts[4].v2);

  // A joint cpu,cpuacct hierarchy is found by either name.
  const auto joint =
      cg::parse_mounts("9 1 0:9 / /cg/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n");
  CHECK(cg::directory_of(members[0], joint, "/r") == "/r/cg/cpu,cpuacct/a:b/c");

  // A container's own mount shows only its subtree: the path less the mount's root.
  const auto inside =
      cg::parse_mounts("9 1 0:9 /kubepods/pod1/ctr /sys/fs/cgroup/cpu ro - cgroup cgroup rw,cpu\n");
  cg::Membership mine{"1", {"cpu"}, "/kubepods/pod1/ctr"};
  CHECK(cg::directory_of(mine, inside, "") == "/sys/fs/cgroup/cpu");
  mine.path = "/kubepods/pod1/ctr/sub";
  CHECK(cg::directory_of(mine, inside, "") == "/sys/fs/cgroup/cpu/sub");
  mine.path = "/kubepods/pod1/ctr2";  // a sibling with a common prefix is not under the mount
  CHECK_FALSE(cg::directory_of(mine, inside, ""));
}

TEST_CASE("cgroup meter readers, v1 layout: quota (tightest of the ancestors), usage, memory") {
  const Laid laid(v1_layout);
  const fs::path &root = laid.root;

  const CgroupCpu cpu = find_cgroup_cpu(root);
  CHECK_FALSE(cpu.v2);
  CHECK(cpu.quota_dir == (root / "sys/fs/cgroup/cpu/kubepods/pod1/ctr").string());
  CHECK(cpu.usage_dir == (root / "sys/fs/cgroup/cpuacct/kubepods/pod1/ctr").string());
  CHECK(cpu.quota_top == (root / "sys/fs/cgroup/cpu").string());
  CHECK(read_cgroup_usage_ns(cpu) == 123456789u);
  CHECK(read_quota_cores(cpu) == doctest::Approx(0.5));
  // Without its own quota the pod's 1.5 binds; with none anywhere, none.
  put(root / "sys/fs/cgroup/cpu/kubepods/pod1/ctr/cpu.cfs_quota_us", "-1\n");
  CHECK(read_quota_cores(cpu) == doctest::Approx(1.5));
  put(root / "sys/fs/cgroup/cpu/kubepods/pod1/cpu.cfs_quota_us", "-1\n");
  CHECK_FALSE(read_quota_cores(cpu));
  // A cgroup meter reads usage as busy and wall time times the capacity as total.
  const auto meter = cgroup_meter(cpu, 0.5);
  CHECK(meter->cores() == doctest::Approx(0.5));
  const auto a = meter->read();
  REQUIRE(a);
  CHECK(a->busy == 123456789u);
  std::this_thread::sleep_for(100ms);
  put(root / "sys/fs/cgroup/cpuacct/kubepods/pod1/ctr/cpuacct.usage",
      std::to_string(123456789u + 25'000'000u) + "\n");  // 25 ms of cpu
  const auto b = meter->read();
  REQUIRE(b);
  // 25 ms in >= 100 ms of wall time against half a core: at most 50%.
  const double used = utilisation_percent(*a, *b);
  CHECK(used > 10);  // the sleep may run long on a loaded machine, never short
  CHECK(used <= 50.0 + 1e-9);

  const CgroupMemory mem = find_cgroup_memory(root);
  CHECK_FALSE(mem.v2);
  CHECK(mem.dir == (root / "sys/fs/cgroup/memory/kubepods/pod1/ctr").string());
  const MemInfo host = host_figures(8192 * kMiB, 6144 * kMiB);
  MemInfo m = read_cgroup_meminfo(mem, host);
  REQUIRE(m.cgroup);
  CHECK(m.cgroup->limit == 512 * kMiB);
  CHECK(m.cgroup->usage == 100 * kMiB);
  CHECK(m.total == 512 * kMiB);
  CHECK(m.free == 412 * kMiB);
  CHECK(m.cached == 20 * kMiB);  // total_cache, not this level's cache
  CHECK(safety_floor(m) == 16 * kMiB);
  CHECK(m.available == 432 * kMiB);
  // mem-percent 50 of the 512 MB limit: 256 MB stays; ram mode counts the cache as takeable.
  MemTarget half;
  half.percent = 50;
  const std::uint64_t stays = 512 * kMiB / 100 * 50;  // ChaosBlade's whole-percent arithmetic
  CHECK(half.reserved(m) == stays);
  CHECK(half.wanted(m) == 432 * kMiB - stays);
  CHECK(allowed(half, m) == 432 * kMiB - stays);
  // The host's room bounds the cgroup's: 300 MB available above a 256 MB floor leaves 44 MB.
  m = read_cgroup_meminfo(mem, host_figures(8192 * kMiB, 300 * kMiB));
  CHECK(allowed(half, m) == 44 * kMiB);
  // v1's "no limit" (the largest page-aligned long): the host's MemTotal is the total.
  put(root / "sys/fs/cgroup/memory/kubepods/pod1/ctr/memory.limit_in_bytes",
      "9223372036854771712\n");
  m = read_cgroup_meminfo(mem, host);
  CHECK_FALSE(m.cgroup->limit);
  CHECK(m.total == 8192 * kMiB);
  CHECK(describe(half, m)["meter"] == "cgroup");
  CHECK(describe(half, m)["limit_bytes"].is_null());
  CHECK(describe(half, host)["meter"] == "host");
}

TEST_CASE("cgroup meter readers, v2 layout: cpu.max, cpu.stat, memory.max max, memory.current") {
  const Laid laid(v2_layout);
  const fs::path &root = laid.root;

  const CgroupCpu cpu = find_cgroup_cpu(root);
  CHECK(cpu.v2);
  CHECK(cpu.quota_dir == (root / "sys/fs/cgroup/system.slice/ctr.scope").string());
  CHECK(cpu.usage_dir == cpu.quota_dir);
  CHECK(read_cgroup_usage_ns(cpu) == 5'000'000u);  // usage_usec in ns
  CHECK(read_quota_cores(cpu) == doctest::Approx(0.25));
  put(root / "sys/fs/cgroup/system.slice/ctr.scope/cpu.max", "max 100000\n");
  CHECK_FALSE(read_quota_cores(cpu));

  const CgroupMemory mem = find_cgroup_memory(root);
  CHECK(mem.v2);
  const MemInfo m = read_cgroup_meminfo(mem, host_figures(4096 * kMiB, 3072 * kMiB));
  CHECK_FALSE(m.cgroup->limit);  // "max"
  CHECK(m.total == 4096 * kMiB);
  CHECK(m.cgroup->usage == 64 * kMiB);
  CHECK(m.cached == 8 * kMiB);  // "file"
  put(root / "sys/fs/cgroup/system.slice/ctr.scope/memory.max", std::to_string(256 * kMiB));
  CHECK(read_cgroup_meminfo(mem, host_figures(4096 * kMiB, 3072 * kMiB)).total == 256 * kMiB);
}

TEST_CASE("cgroup meter: what it cannot find is said, and the configuration is checked") {
  bt::TempDir tmp;
  const fs::path root = tmp.path();
  // No files at all.
  CHECK_THROWS_WITH_AS(find_cgroup_cpu(root), doctest::Contains("cpu_meter cgroup: cannot read"),
                       blade::sdk::FailedPrecondition);
  // A v1 cpu hierarchy that is not mounted where the process can see it.
  put(root / "proc/self/mountinfo", "25 1 8:1 / / rw - ext4 /dev/sda1 rw\n");
  put(root / "proc/self/cgroup", "2:cpuacct:/a\n1:cpu:/a\n");
  CHECK_THROWS_WITH_AS(find_cgroup_cpu(root), doctest::Contains("not both mounted"),
                       blade::sdk::FailedPrecondition);
  CHECK_THROWS_WITH_AS(find_cgroup_memory(root),
                       doctest::Contains("mem_meter cgroup: the process is in no memory cgroup"),
                       blade::sdk::FailedPrecondition);
  // Mounted, but the usage file is missing.
  v2_layout(root);
  fs::remove(root / "sys/fs/cgroup/system.slice/ctr.scope/cpu.stat");
  CHECK_THROWS_WITH_AS(find_cgroup_cpu(root), doctest::Contains("cpu.stat"),
                       blade::sdk::FailedPrecondition);

  CHECK(meter_from_config("{}", "cpu_meter") == Meter::host);
  CHECK(meter_from_config(R"({"cpu_meter":"host"})", "cpu_meter") == Meter::host);
  CHECK(meter_from_config(R"({"cpu_meter":"cgroup"})", "cpu_meter") == Meter::cgroup);
  CHECK(meter_from_config(R"({"cpu_meter":"cgroup"})", "mem_meter") == Meter::host);
  CHECK_THROWS_WITH_AS(meter_from_config(R"({"mem_meter":"pod"})", "mem_meter"),
                       doctest::Contains("mem_meter"), blade::sdk::FailedPrecondition);
  CHECK_THROWS_AS(meter_from_config(R"({"cpu_meter":1})", "cpu_meter"),
                  blade::sdk::FailedPrecondition);
}

TEST_CASE(
    "cpu fullload, cgroup meter, for real: the percent of a 0.5-cpu quota, measured from "
    "cpuacct.usage") {
  std::string cpu_dir, acct_dir;
  {
    TestCgroup cpu("cpu"), acct("cpuacct");
    cpu_dir = cpu.dir();
    acct_dir = acct.dir();
    cpu.set("cpu.cfs_period_us", "100000");
    cpu.set("cpu.cfs_quota_us", "50000");
    // The weight of a cgroup is its shares whatever its threads' nice: at
    // the default 1024 a host busy with other work (this one's two cores at
    // a load of 10) gave even two bare spinners here only 0.35 of a core,
    // so the quota was not what bound. A Kubernetes request does the same
    // (it sets shares); the quota still caps the test at half a core.
    cpu.set("cpu.shares", "8192");
    cpu.enter();
    acct.enter();
    bt::Options options;
    options.config_json = R"({"cpu_meter":"cgroup"})";
    bt::Host host = bt::Host::load(kOsPlugin, options);
    bt::Instance &inst = host.start();
    const std::size_t threads_before = thread_count();

    // cpu-percent P of the cgroup's capacity: 50 -> a quarter core, 100 -> the quota.
    for (const auto &[percent, cores] : {std::pair{50, 0.25}, std::pair{100, 0.5}}) {
      CAPTURE(percent);
      const auto r = inst.create("cpu", "fullload", {{"cpu-percent", std::to_string(percent)}});
      REQUIRE_MESSAGE(r.ok(), r.describe());
      const json result = json::parse(r.result);
      CHECK(result["mode"] == "cgroup-average");
      CHECK(result["meter"] == "cgroup");
      CHECK(result["capacity_cores"].get<double>() == doctest::Approx(0.5));
      CHECK(result["quota_cores"].get<double>() == doctest::Approx(0.5));
      CHECK(result["cgroup"] == acct.dir());
      const double measured = settled_cores(acct);
      MESSAGE("cpu-percent " << percent << " in a 0.5-cpu cgroup: " << measured << " cores");
      CHECK(std::abs(measured - cores) <= 0.05);
      REQUIRE(inst.destroy(r).ok());
      CHECK(thread_count() == threads_before);  // every burner joined
    }
    // Stopped: the cgroup's usage no longer grows by burners.
    const auto u0 = acct.number("cpuacct.usage");
    std::this_thread::sleep_for(500ms);
    CHECK(static_cast<double>(acct.number("cpuacct.usage") - u0) / 1e9 < 0.05);

    // The cgroup's other processes count, as other load counts on the host:
    // a neighbour using about 0.1 of a core leaves the burners the rest.
    {
      const Neighbour neighbour;
      const auto r = inst.create("cpu", "fullload", {{"cpu-percent", "50"}});
      REQUIRE_MESSAGE(r.ok(), r.describe());
      const double n0 = neighbour.cpu_seconds();
      const auto t0 = std::chrono::steady_clock::now();
      const double measured = settled_cores(acct);
      const double beside =
          (neighbour.cpu_seconds() - n0) /
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      CHECK(beside > 0.05);  // it was there, so the burners had to leave it room
      MESSAGE("cpu-percent 50 beside a neighbour of ~0.1 core: the cgroup uses " << measured
                                                                                 << " cores");
      CHECK(std::abs(measured - 0.25) <= 0.05);
      REQUIRE(inst.destroy(r).ok());
    }

    // A dry run says the same and reads the cgroup's current use.
    const auto plan = inst.dry_run("cpu", "fullload", {{"cpu-percent", "50"}});
    REQUIRE_MESSAGE(plan.ok(), plan.describe());
    CHECK(json::parse(plan.plan)["meter"] == "cgroup");
    CHECK(json::parse(plan.plan).contains("current_cgroup_utilisation"));
  }
  CHECK_FALSE(fs::exists(cpu_dir));
  CHECK_FALSE(fs::exists(acct_dir));
}

TEST_CASE("cpu fullload: the host meter without the configuration, and a bad meter refused") {
  {
    bt::Host host = bt::Host::load(kOsPlugin);
    bt::Instance &inst = host.start();
    const auto plan = inst.dry_run("cpu", "fullload", {{"cpu-percent", "50"}, {"cpu-count", "1"}});
    REQUIRE_MESSAGE(plan.ok(), plan.describe());
    CHECK(json::parse(plan.plan)["mode"] == "host-average");
    CHECK(json::parse(plan.plan)["meter"] == "host");
  }
  bt::Options options;
  options.config_json = R"({"cpu_meter":"container","mem_meter":"pod"})";
  bt::Host host = bt::Host::load(kOsPlugin, options);
  bt::Instance &inst = host.start();
  const auto cpu = inst.create("cpu", "fullload", {{"cpu-percent", "50"}});
  CHECK(cpu.status == BLADE_STATUS_FAILED_PRECONDITION);
  CHECK(cpu.message.find("cpu_meter") != std::string::npos);
  const auto mem = inst.create("mem", "load", {{"mem-percent", "50"}});
  CHECK(mem.status == BLADE_STATUS_FAILED_PRECONDITION);
  CHECK(mem.message.find("mem_meter") != std::string::npos);
}

TEST_CASE(
    "mem load, cgroup meter, for real: mem-percent of the cgroup's limit, measured from "
    "memory.usage_in_bytes") {
  std::string mem_dir;
  {
    TestCgroup mem("memory");
    mem_dir = mem.dir();
    const std::uint64_t limit = 256 * kMiB;
    mem.set("memory.limit_in_bytes", std::to_string(limit));
    mem.enter();
    bt::Options options;
    options.config_json = R"({"mem_meter":"cgroup"})";
    bt::Host host = bt::Host::load(kOsPlugin, options);
    bt::Instance &inst = host.start();

    const auto r = inst.create("mem", "load", {{"mem-percent", "50"}, {"rate", "400"}});
    REQUIRE_MESSAGE(r.ok(), r.describe());
    const json result = json::parse(r.result);
    CHECK(result["meter"] == "cgroup");
    CHECK(result["cgroup"] == mem.dir());
    CHECK(result["limit_bytes"] == limit);
    CHECK(result["mem_total"] == limit);
    // The holder is a child of this process, so in the same cgroup.
    const auto holder = result["pid"].get<int>();
    CHECK(slurp("/proc/" + std::to_string(holder) + "/cgroup")
              .find(mem.dir().substr(mem.dir().rfind('/'))) != std::string::npos);
    // It takes up to half the limit (the test's own pages count too) and stops there.
    std::this_thread::sleep_for(3s);
    const double used_mb = static_cast<double>(mem.number("memory.usage_in_bytes")) / kMiB;
    MESSAGE("mem-percent 50 of a 256 MB limit: the cgroup uses " << used_mb << " MB");
    CHECK(std::abs(used_mb - 128) <= 12.8);  // within 10%
    std::this_thread::sleep_for(1500ms);     // a second more of resizing takes nothing more
    CHECK(static_cast<double>(mem.number("memory.usage_in_bytes")) / kMiB <= used_mb + 8);
    CHECK(mem.number("memory.failcnt") == 0);  // the limit was never hit

    REQUIRE(inst.destroy(r).ok());
    CHECK(::kill(holder, 0) != 0);  // killed and reaped
    CHECK(mem.number("memory.usage_in_bytes") < 64 * kMiB);
  }
  CHECK_FALSE(fs::exists(mem_dir));
}
