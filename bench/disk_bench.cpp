// disk fill of 1 GiB through a real bladed (HTTP create until the 201, the
// file allocated), against the bare fallocate(2) of 1 GiB in the same
// directory in the same run: the figure the issue asks for (< 1 s) and how
// much of it is Blade's own. Run on the root filesystem's /var/tmp and on a
// tmpfs (where fallocate has to clear every page).
//   disk_bench [repetitions] [directory]
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "../tests/support/temp_dir.hpp"
#include "bench_bladed.hpp"
#include "bench_stats.hpp"

namespace fs = std::filesystem;
using blade::bench::median;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::uint64_t kGiB = 1024ULL * 1024 * 1024;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::uint64_t available(const fs::path &dir) {
  struct statvfs s {};
  if (::statvfs(dir.c_str(), &s) != 0) return 0;
  return static_cast<std::uint64_t>(s.f_bavail) * s.f_frsize;
}

// One bare fallocate of 1 GiB in `dir`: the baseline.
double bare_fallocate_ms(const fs::path &dir) {
  const fs::path file = dir / "blade-bench-baseline.dat";
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + file.string());
  const auto t0 = Clock::now();
  const int rc = ::fallocate(fd, 0, 0, static_cast<off_t>(kGiB));
  const double ms = ms_since(t0);
  ::close(fd);
  ::unlink(file.c_str());
  if (rc != 0) throw std::runtime_error("fallocate failed in " + dir.string());
  return ms;
}

void run(blade::bench::BenchClient &client, const fs::path &dir, const std::string &label,
         int reps) {
  if (available(dir) < 2 * kGiB) {
    std::printf("  %s: SKIPPED, less than 2 GiB free in %s\n", label.c_str(), dir.c_str());
    return;
  }
  std::vector<double> blade_ms, bare_ms, destroy_ms;
  std::string method;
  for (int i = 0; i < reps; ++i) {
    bare_ms.push_back(bare_fallocate_ms(dir));
    const auto t0 = Clock::now();
    auto data = client.create({{"target", "disk"},
                               {"action", "fill"},
                               {"flags", {{"path", dir.string()}, {"size", 1024}}}});
    blade_ms.push_back(ms_since(t0));
    method = data["result"].value("method", "");
    const auto t1 = Clock::now();
    client.destroy(data["uid"]);
    destroy_ms.push_back(ms_since(t1));
  }
  const double blade = median(blade_ms), bare = median(bare_ms);
  std::printf(
      "  %s (%s, method %s): blade create p50 %.1f ms, bare fallocate p50 %.1f ms, "
      "ratio %.2fx; destroy p50 %.1f ms; target < 1000 ms: %s\n",
      label.c_str(), dir.c_str(), method.c_str(), blade, bare, blade / bare, median(destroy_ms),
      blade < 1000 ? "met" : "MISSED");
}

}  // namespace

int main(int argc, char **argv) {
  const int reps = argc > 1 ? std::stoi(argv[1]) : 10;
  const fs::path disk_dir = argc > 2 ? argv[2] : "/var/tmp";
  blade::bench::BenchBladed bladed({fs::path(BLADE_BUILT_PLUGIN_DIR) / "disk.so"}, {});
  blade::bench::BenchClient client(bladed.port());
  std::printf("disk benchmark: fill 1 GiB, %d repetitions, medians\n", reps);
  run(client, disk_dir, "disk", reps);

  blade::test::TempDir tmp("blade-bench-tmpfs");
  if (::mount("tmpfs", tmp.path().c_str(), "tmpfs", 0, "size=3g") == 0) {
    run(client, tmp.path(), "tmpfs", reps);
    ::umount2(tmp.path().c_str(), MNT_DETACH);
  } else {
    std::printf("  tmpfs: SKIPPED, cannot mount one (not root?)\n");
  }
  return 0;
}
