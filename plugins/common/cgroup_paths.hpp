// Where a process's cgroups are: its lines of /proc/<pid>/cgroup matched
// with the cgroup mounts of /proc/<pid>/mountinfo, for cgroup v1 (one
// hierarchy per controller or per group of controllers, each mounted on its
// own, e.g. /sys/fs/cgroup/cpu) and v2 (one "0::" hierarchy on a cgroup2
// mount). Every path is read under a `root` prefix ("" on a real system),
// so tests lay out both files and the cgroup directories in a temporary
// directory. Header only, shared by the plugins of this repository; only
// the standard library and Linux.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proc_reader.hpp"

namespace blade::plugins::cgroup {

// One line of /proc/<pid>/cgroup: "4:cpu,cpuacct:/kubepods/pod1/ctr". v2's
// line is "0::/path" (no controllers); a named v1 hierarchy lists
// "name=systemd".
struct Membership {
  std::string hierarchy;                 // "4"; "0" for v2
  std::vector<std::string> controllers;  // empty for v2
  std::string path;                      // as the process's cgroup namespace shows it
};

// A cgroup file system mount: one line of mountinfo.
struct Mount {
  std::string root;                  // the directory of the hierarchy mounted ("/" for all of it)
  std::string mount_point;           // where it is mounted
  bool v2 = false;                   // cgroup2; else v1 "cgroup"
  std::vector<std::string> options;  // super options: a v1 mount's controllers are among them
};

namespace detail {

inline std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const std::size_t end = std::min(s.find(sep, pos), s.size());
    out.emplace_back(s.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
inline std::string unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const auto d = s.substr(i + 1, 3);
      if (std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '7'; })) {
        out += static_cast<char>((d[0] - '0') * 64 + (d[1] - '0') * 8 + (d[2] - '0'));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

inline bool contains(const std::vector<std::string> &v, std::string_view x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace detail

inline std::vector<Membership> parse_memberships(std::string_view text) {
  std::vector<Membership> out;
  for (const auto &line : detail::split(text, '\n')) {
    // The path may itself hold ':', so only the first two split.
    const auto first = line.find(':');
    const auto second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    Membership m;
    m.hierarchy = line.substr(0, first);
    const std::string names = line.substr(first + 1, second - first - 1);
    if (!names.empty()) m.controllers = detail::split(names, ',');
    m.path = line.substr(second + 1);
    out.push_back(std::move(m));
  }
  return out;
}

// The cgroup and cgroup2 mounts of a mountinfo text, in its order.
inline std::vector<Mount> parse_mounts(std::string_view text) {
  std::vector<Mount> out;
  for (const auto &line : detail::split(text, '\n')) {
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    const auto fields = proc::detail::split_ws(line);
    const auto dash = std::find(fields.begin(), fields.end(), std::string_view("-"));
    if (fields.size() < 5 || dash == fields.end() || fields.end() - dash < 4) continue;
    const std::string_view fstype = dash[1];
    if (fstype != "cgroup" && fstype != "cgroup2") continue;
    Mount m;
    m.root = detail::unescape(fields[3]);
    m.mount_point = detail::unescape(fields[4]);
    m.v2 = fstype == "cgroup2";
    m.options = detail::split(dash[3], ',');
    out.push_back(std::move(m));
  }
  return out;
}

// The directory of a membership's cgroup under one of its hierarchy's
// mounts: the path less the mount's root (a container's mount shows only
// its own subtree). nullopt when no mount of that hierarchy reaches it.
inline std::optional<std::string> directory_of(const Membership &member,
                                               const std::vector<Mount> &mounts,
                                               const std::string &root) {
  for (const auto &m : mounts) {
    const bool same_hierarchy =
        member.controllers.empty()
            ? m.v2
            : !m.v2 &&
                  std::all_of(member.controllers.begin(), member.controllers.end(),
                              [&](const std::string &c) { return detail::contains(m.options, c); });
    if (!same_hierarchy) continue;
    std::string rel;
    if (m.root == "/") {
      rel = member.path;
    } else if (member.path == m.root ||
               (member.path.rfind(m.root, 0) == 0 && member.path[m.root.size()] == '/')) {
      rel = member.path.substr(m.root.size());
    } else {
      continue;  // this mount shows another part of the hierarchy
    }
    if (rel == "/") rel.clear();
    return root + (m.mount_point == "/" ? "" : m.mount_point) + rel;
  }
  return std::nullopt;
}

// The first word of a cgroup file ("123\n", "max 100000") as a number;
// nullopt when unreadable or not a number ("max").
template <class T>
std::optional<T> read_number(const std::string &path) {
  const auto text = proc::detail::read_text(path);
  if (!text) return std::nullopt;
  const auto words = proc::detail::split_ws(*text);
  T v{};
  if (words.empty() || !proc::detail::parse_number(words[0], v)) return std::nullopt;
  return v;
}

// The value of `key` in a flat keyed file of "key value" lines (cpu.stat,
// memory.stat); nullopt when unreadable or absent.
inline std::optional<std::uint64_t> read_keyed(const std::string &path, std::string_view key) {
  const auto text = proc::detail::read_text(path);
  if (!text) return std::nullopt;
  const auto words = proc::detail::split_ws(*text);
  for (std::size_t i = 0; i + 1 < words.size(); i += 2) {
    std::uint64_t v = 0;
    if (words[i] == key && proc::detail::parse_number(words[i + 1], v)) return v;
  }
  return std::nullopt;
}

// A process's cgroups as read from its two /proc files under `root`.
class Placement {
 public:
  // "self" or a pid; nullopt when either file cannot be read.
  static std::optional<Placement> of(const std::string &pid = "self",
                                     const std::string &root = "") {
    const auto cgroups = proc::detail::read_text(root + "/proc/" + pid + "/cgroup");
    const auto mountinfo = proc::detail::read_text(root + "/proc/" + pid + "/mountinfo");
    if (!cgroups || !mountinfo) return std::nullopt;
    Placement p;
    p.root_ = root;
    p.memberships_ = parse_memberships(*cgroups);
    p.mounts_ = parse_mounts(*mountinfo);
    return p;
  }

  // The directory of the v1 hierarchy that holds `controller` ("cpu",
  // "memory"); nullopt when no v1 hierarchy has it (v2 only) or it is not
  // mounted where the process can see it.
  std::optional<std::string> v1(std::string_view controller) const {
    for (const auto &m : memberships_)
      if (m.hierarchy != "0" && detail::contains(m.controllers, controller))
        return directory_of(m, mounts_, root_);
    return std::nullopt;
  }

  // The directory of the process's v2 cgroup; nullopt without one.
  std::optional<std::string> v2() const {
    for (const auto &m : memberships_)
      if (m.hierarchy == "0" && m.controllers.empty()) return directory_of(m, mounts_, root_);
    return std::nullopt;
  }

  // The mount point (under root) of the hierarchy `dir` is in: how far up
  // a walk over ancestors may go.
  std::string mount_of(const std::string &dir) const {
    std::string best;
    for (const auto &m : mounts_) {
      const std::string at = root_ + m.mount_point;
      if ((dir == at || dir.rfind(at + "/", 0) == 0) && at.size() > best.size()) best = at;
    }
    return best;
  }

  const std::vector<Membership> &memberships() const { return memberships_; }

 private:
  std::string root_;
  std::vector<Membership> memberships_;
  std::vector<Mount> mounts_;
};

}  // namespace blade::plugins::cgroup
