#include "blade/core/plugin/protected_paths.hpp"

#include <algorithm>
#include <system_error>

namespace blade {

// A fault deleting the database would make the next start forget every
// active fault, so no plugin may touch these.
std::vector<std::string> daemon_protected_paths(
    const std::filesystem::path &sqlite_path, const std::filesystem::path &state_dir,
    const std::vector<std::filesystem::path> &plugin_dirs,
    const std::filesystem::path &install_plugin_dir) {
  std::vector<std::string> out;
  auto add = [&out](const std::filesystem::path &p) {
    if (p.empty()) return;
    std::error_code ec;
    auto full = std::filesystem::weakly_canonical(std::filesystem::absolute(p, ec), ec);
    std::string text = (ec ? p : full).lexically_normal().string();
    if (std::find(out.begin(), out.end(), text) == out.end()) out.push_back(text);
  };
  add(sqlite_path);
  add(sqlite_path.string() + "-wal");
  add(sqlite_path.string() + "-shm");
  add(sqlite_path.string() + "-journal");
  add(state_dir);
  for (const auto &dir : plugin_dirs)
    add(dir);
  add(install_plugin_dir);
  return out;
}

}  // namespace blade
