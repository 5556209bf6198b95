// Paths no fault may touch, shared by the plugins of this repository:
// /proc and /sys (a write there changes the kernel, not a file), and what
// bladed itself lives on (its database, state and plugin dirs, which the
// host names through host_info.protected_paths). Losing the database would
// make the next start forget every active fault.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <blade/plugin.hpp>

namespace blade::plugins {

// The absolute, symlink-free form of `p` as far as it exists (the rest kept
// as written), so a symlink into a protected dir is seen for what it is.
inline std::filesystem::path resolved_path(const std::filesystem::path &p) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(p, ec);
  if (ec) return p.lexically_normal();
  auto canon = std::filesystem::weakly_canonical(abs, ec);
  return (ec ? abs : canon).lexically_normal();
}

// True when `inner` is `outer` or lies under it (both resolved).
inline bool path_within(const std::filesystem::path &inner, const std::filesystem::path &outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (o->empty()) continue;  // a trailing separator
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

inline const std::vector<std::string> &kernel_trees() {
  static const std::vector<std::string> trees = {"/proc", "/sys"};
  return trees;
}

// Why `target` must not be touched, or nullopt. `whole` is true for faults
// that act on the path itself (delete, move, chmod, rewrite), which must not
// take a protected path with them either: moving /var/lib moves the state
// dir. Faults that only add a file inside a directory (disk fill, burn) pass
// false, so filling / stays possible.
inline std::optional<std::string> protected_reason(const std::filesystem::path &target,
                                                   const std::vector<std::string> &protected_paths,
                                                   bool whole) {
  const auto t = resolved_path(target);
  for (const auto &tree : kernel_trees())
    if (path_within(t, tree)) return t.string() + " is under " + tree + ", the kernel's own tree";
  for (const auto &p : protected_paths) {
    const auto guarded = resolved_path(p);
    if (path_within(t, guarded))
      return t.string() + " is bladed's own " + guarded.string() +
             " (its database, state or plugins)";
    if (whole && path_within(guarded, t))
      return t.string() + " holds bladed's own " + guarded.string() +
             " (its database, state or plugins)";
  }
  return std::nullopt;
}

// Throws InvalidArgument "<flag>: ..." (the API names the field) when
// `target` is protected.
inline void refuse_protected(std::string_view flag, const std::filesystem::path &target,
                             const std::vector<std::string> &protected_paths, bool whole) {
  if (auto why = protected_reason(target, protected_paths, whole))
    throw sdk::InvalidArgument(std::string(flag) + ": refused: " + *why);
}

}  // namespace blade::plugins
