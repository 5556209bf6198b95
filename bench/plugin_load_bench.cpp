// Discovering and loading 5 plugins with their specs (issue target: under
// 20 ms on the 2-core reference machine), beside a baseline of bare
// dlopen + dlsym + entry() of the same files, measured in the same run.
//   usage: plugin_load_bench [iterations]
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <blade/plugin.h>

#include "../tests/support/temp_dir.hpp"
#include "bench_stats.hpp"
#include "blade/core/model/log.hpp"
#include "blade/core/plugin/plugin_loader.hpp"
#include "blade/core/plugin/registry.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

using blade::bench::percentile;

std::vector<double> measure(int iterations, const std::function<void()> &body) {
  body();  // warm the page cache and the allocator
  std::vector<double> ms;
  for (int i = 0; i < iterations; ++i) {
    auto t0 = Clock::now();
    body();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return ms;
}

}  // namespace

int main(int argc, char **argv) {
  int iterations = argc > 1 ? std::atoi(argv[1]) : 200;
  blade::log::set_level(blade::log::Level::Error);
  blade::test::TempDir dir("blade-bench");
  fs::path plugins = dir / "plugins";
  fs::create_directories(plugins);
  const std::vector<fs::path> sources = {
      fs::path(BLADE_BUILT_PLUGIN_DIR) / "example.so",
      fs::path(BLADE_TEST_PLUGIN_DIR) / "c_marker.so",
      fs::path(BLADE_TEST_PLUGIN_DIR) / "noop_a.so",
      fs::path(BLADE_TEST_PLUGIN_DIR) / "noop_b.so",
      fs::path(BLADE_TEST_PLUGIN_DIR) / "noop_c.so",
  };
  for (const auto &s : sources) {
    fs::copy_file(s, plugins / s.filename());
    fs::permissions(plugins / s.filename(), fs::perms(0755));
  }

  std::size_t loaded = 0;
  auto full = measure(iterations, [&] {
    blade::Registry registry;
    auto files = blade::discover_plugin_files({plugins});
    loaded = blade::load_plugins(files, {"bench", dir / "state"}, registry);
  });  // the registry's destruction (shutdown + dlclose) is inside the timing too
  if (loaded != sources.size()) {
    std::fprintf(stderr, "expected %zu plugins to load, got %zu\n", sources.size(), loaded);
    return 1;
  }

  auto baseline = measure(iterations, [&] {
    for (const auto &file : blade::discover_plugin_files({plugins})) {
      void *h = ::dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
      auto entry = reinterpret_cast<blade_plugin_entry_fn>(::dlsym(h, BLADE_PLUGIN_ENTRY_NAME));
      if (!entry || !entry()) std::abort();
      ::dlclose(h);
    }
  });

  double full_p50 = percentile(full, 0.5), base_p50 = percentile(baseline, 0.5);
  std::printf("plugin load benchmark: %zu plugins, %d iterations\n", sources.size(), iterations);
  std::printf("  discover+load+spec+init+register: median %.3f ms, p90 %.3f ms, max %.3f ms\n",
              full_p50, percentile(full, 0.9), percentile(full, 1.0));
  std::printf("  baseline dlopen+dlsym+entry:      median %.3f ms, p90 %.3f ms\n", base_p50,
              percentile(baseline, 0.9));
  std::printf("  ratio to baseline (medians): %.2fx\n", full_p50 / base_p50);
  bool ok = full_p50 < 20.0;
  std::printf("  target median < 20 ms: %s\n", ok ? "met" : "MISSED");
  return ok ? 0 : 1;
}
