// disk burn against a real bladed: read and write throughput seen in the
// daemon's /proc/<pid>/io and the device's /proc/diskstats while it runs,
// none after destroy, no thread and no file left.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "../support/eventually.hpp"
#include "../support/process_state.hpp"
#include "disk_test_support.hpp"

using namespace blade::test;
using namespace blade::test::disk;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

bool has_burn_files(const fs::path &dir) {
  for (const auto &name : entries(dir))
    if (name.rfind("blade-burn-", 0) == 0) return true;
  return false;
}

// Everything written to the filesystem so far reaches its device now, so
// what the device does afterwards is not the tail of earlier work.
void sync_filesystem(const fs::path &dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  CHECK(::syncfs(fd) == 0);
  ::close(fd);
}

double mib_per_s(std::uint64_t bytes, std::chrono::steady_clock::duration d) {
  return static_cast<double>(bytes) / kMiB / std::chrono::duration<double>(d).count();
}

// A bladed with the disk plugin, its thread count before any burn, and a
// loop-mounted ext4 to burn on: its inode tables initialised by mkfs, no
// journal and no block bitmaps read ahead, so the filesystem itself does no
// io in the background and the device's counters are ours.
struct QuietExt4 {
  LoopFs ext4{
      "ext4", 256, {"-O", "^has_journal", "-E", "lazy_itable_init=0"}, "no_prefetch_block_bitmaps"};
  BladedProcess d{disk_options()};
  httplib::Client c = d.client();
  pid_t pid = d.process->pid();
  std::size_t threads_before = 0;

  QuietExt4() {
    REQUIRE_MESSAGE(ext4.ok(), ext4.why());
    threads_before = settled_thread_count(pid);
  }
};

}  // namespace

TEST_CASE_FIXTURE(QuietExt4,
                  "disk burn reads and writes with O_DIRECT on a loop-mounted ext4, and destroy "
                  "stops the io within 1 s and removes its files") {
  auto a =
      create(c, "disk", "burn",
             {{"path", ext4.path().string()}, {"read", "true"}, {"write", "true"}, {"size", "4"}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  const auto &result = a.body["data"]["result"];
  CHECK(result["read_direct"] == true);
  CHECK(result["write_direct"] == true);
  CHECK(result["block_bytes"] == 4 * kMiB);
  CHECK(thread_count(pid) == threads_before + 2);
  CHECK(has_burn_files(ext4.path()));

  const auto t0 = std::chrono::steady_clock::now();
  const ProcessIo p0 = process_io(pid);
  const DeviceIo d0 = device_io(ext4.device());
  std::this_thread::sleep_for(1s);
  const ProcessIo p1 = process_io(pid);
  const DeviceIo d1 = device_io(ext4.device());
  const auto took = std::chrono::steady_clock::now() - t0;
  const double read_rate = mib_per_s(p1.read_bytes - p0.read_bytes, took);
  const double write_rate = mib_per_s(p1.write_bytes - p0.write_bytes, took);
  MESSAGE("bladed read " << read_rate << " MiB/s, wrote " << write_rate << " MiB/s; "
                         << ext4.device() << " read " << (d1.sectors_read - d0.sectors_read) / 2048
                         << " MiB, wrote " << (d1.sectors_written - d0.sectors_written) / 2048
                         << " MiB");
  CHECK(read_rate >= 1.0);
  CHECK(write_rate >= 1.0);
  CHECK(d1.sectors_read - d0.sectors_read >= 2048);
  CHECK(d1.sectors_written - d0.sectors_written >= 2048);

  const auto destroy_start = std::chrono::steady_clock::now();
  CHECK(destroy(c, a.uid()).status == 200);
  const auto destroy_took = std::chrono::steady_clock::now() - destroy_start;
  MESSAGE("destroy answered after "
          << std::chrono::duration_cast<std::chrono::milliseconds>(destroy_took).count() << " ms");
  CHECK(destroy_took < 1s);
  CHECK(thread_count(pid) == threads_before);
  CHECK_FALSE(has_burn_files(ext4.path()));

  sync_filesystem(ext4.path());
  const DeviceIo q0 = device_io(ext4.device());
  std::this_thread::sleep_for(1s);
  const DeviceIo q1 = device_io(ext4.device());
  CHECK(q1.sectors_read == q0.sectors_read);
  CHECK(q1.sectors_written == q0.sectors_written);
  CHECK(destroy(c, a.uid()).status == 200);
}

TEST_CASE_FIXTURE(QuietExt4,
                  "an io error stops both directions and marks the experiment failed with the "
                  "error") {
  auto a =
      create(c, "disk", "burn",
             {{"path", ext4.path().string()}, {"read", "true"}, {"write", "true"}, {"size", "1"}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  CHECK(thread_count(pid) == threads_before + 2);

  // ext4's shutdown ioctl: from here every io on the filesystem is EIO, as
  // on a disk that died under the burn.
  constexpr unsigned long kExt4Shutdown = _IOR('X', 125, std::uint32_t);
  std::uint32_t no_log_flush = 2;
  const int fd = ::open(ext4.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::ioctl(fd, kExt4Shutdown, &no_log_flush) == 0);
  ::close(fd);

  const json x = wait_status(c, a.uid(), "failed", 5s);
  REQUIRE(x.is_object());
  CHECK(x["status"] == "failed");
  MESSAGE("failed with: " << x.value("error", ""));
  CHECK(x.value("error", "").find("disk burn stopped") != std::string::npos);
  CHECK(eventually([&] { return thread_count(pid) == threads_before; }, 2s));
}

TEST_CASE("where O_DIRECT is refused (ramfs) burn runs buffered, and leaves nothing") {
  // ramfs has no O_DIRECT and reports no size, so no space check applies.
  ScratchFs t("ramfs", 0);
  BladedProcess d(disk_options());
  auto c = d.client();
  const pid_t pid = d.process->pid();
  const std::size_t threads_before = settled_thread_count(pid);
  auto a =
      create(c, "disk", "burn", {{"path", t.path().string()}, {"read", "true"}, {"write", "true"}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  CHECK(a.body["data"]["result"]["read_direct"] == false);
  CHECK(a.body["data"]["result"]["write_direct"] == false);
  CHECK(thread_count(pid) == threads_before + 2);
  // Memory, not a disk: the io shows in the bytes the syscalls moved.
  const ProcessIo p0 = process_io(pid);
  std::this_thread::sleep_for(300ms);
  const ProcessIo p1 = process_io(pid);
  CHECK(p1.rchar - p0.rchar >= kMiB);
  CHECK(p1.wchar - p0.wchar >= kMiB);
  CHECK(destroy(c, a.uid()).status == 200);
  CHECK(thread_count(pid) == threads_before);
  CHECK(entries(t.path()).empty());
}

TEST_CASE("bad burn input is a 400 naming the flag, and nothing starts") {
  ScratchFs t("tmpfs", 8);
  BladedProcess d(disk_options());
  auto c = d.client();
  const pid_t pid = d.process->pid();
  const std::size_t threads_before = settled_thread_count(pid);
  const std::string dir = t.path().string();
  check_refused(
      c, "burn",
      {
          {{{"path", dir}}, "flags.read", "give read, write or both"},
          {{{"path", "relative"}, {"read", "true"}}, "flags.path", "absolute"},
          {{{"path", dir + "/missing"}, {"write", "true"}}, "flags.path", "does not exist"},
          {{{"path", dir}, {"write", "true"}, {"size", "0"}}, "flags.size", ""},
          {{{"path", dir}, {"write", "true"}, {"size", "10"}}, "flags.size", "not enough space"},
      });
  CHECK(thread_count(pid) == threads_before);
  CHECK(entries(t.path()).empty());
}

TEST_CASE("disk burn dry run names the files and bytes, starting nothing") {
  ScratchFs t("tmpfs", 128);
  BladedProcess d(disk_options());
  auto c = d.client();
  const pid_t pid = d.process->pid();
  const std::size_t threads_before = settled_thread_count(pid);
  auto a = create(c, "disk", "burn",
                  {{"path", t.path().string()}, {"read", "true"}, {"write", "true"}}, true);
  REQUIRE_MESSAGE(a.status == 200, a.body.dump());
  const auto plan = a.body["data"]["plan"];
  CHECK(plan["files"].size() == 2);
  CHECK(plan["block_bytes"] == 10 * kMiB);
  CHECK(plan["bytes"] == 2 * plan["file_bytes"].get<std::uint64_t>());
  CHECK(thread_count(pid) == threads_before);
  CHECK(entries(t.path()).empty());
}

TEST_CASE("burn files left by a SIGKILLed bladed are removed when it starts again") {
  ScratchFs t("tmpfs", 128);
  BladedProcess d(disk_options());
  std::string uid;
  {
    auto c = d.client();
    auto a = create(c, "disk", "burn",
                    {{"path", t.path().string()}, {"read", "true"}, {"write", "true"}});
    REQUIRE_MESSAGE(a.status == 201, a.body.dump());
    uid = a.uid();
  }
  d.crash();
  CHECK(has_burn_files(t.path()));
  d.restart();
  auto c = d.client();
  CHECK(wait_destroyed(c, uid) == "destroyed");
  CHECK(entries(t.path()).empty());
}
