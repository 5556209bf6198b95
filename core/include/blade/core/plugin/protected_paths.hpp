// The paths bladed itself lives on, which no fault may touch: the daemon
// computes them for its plugins (host_info.protected_paths), and
// `check-plugin --exercise` computes the same for its state dir.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace blade {

// The database with its WAL, SHM and journal files, the state dir, every
// plugin dir and the install plugin dir (empty entries skipped), each made
// absolute and normal, without duplicates, in that order.
std::vector<std::string> daemon_protected_paths(
    const std::filesystem::path &sqlite_path, const std::filesystem::path &state_dir,
    const std::vector<std::filesystem::path> &plugin_dirs,
    const std::filesystem::path &install_plugin_dir);

}  // namespace blade
