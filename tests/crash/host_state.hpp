// What a crash test compares before a create and after the restart that
// rolled it back: the host as a fault can change it, as named facts ("key"
// -> "value"), so a difference reads as a list of what was left behind.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>

#include "../support/process_state.hpp"

namespace blade::test::crash {

namespace fs = std::filesystem;

// Facts about the host, each under a key naming where it was read.
using HostState = std::map<std::string, std::string>;

// FNV-1a: the files compared are small, and a 64-bit hash with the size
// beside it tells any change of bytes apart in practice.
inline std::string content_hash(const fs::path &file) {
  std::ifstream in(file, std::ios::binary);
  std::uint64_t h = 1469598103934665603ULL;
  std::uint64_t size = 0;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    for (std::streamsize i = 0; i < in.gcount(); ++i) {
      h ^= static_cast<unsigned char>(buf[i]);
      h *= 1099511628211ULL;
    }
    size += static_cast<std::uint64_t>(in.gcount());
  }
  std::ostringstream out;
  out << size << " bytes, fnv1a " << std::hex << h;
  return out.str();
}

// Every entry under `dir` (not `dir` itself): type, mode, owner; for files
// the content hash and mtime, for links the target. A directory's mtime is
// left out: it records that an entry was made and removed in it, which any
// create and destroy of a file fault does; its entries are compared instead.
inline void add_tree(HostState &s, const fs::path &dir) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::path p = it->path();
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) continue;
    std::ostringstream v;
    v << "mode " << std::oct << st.st_mode << std::dec << " owner " << st.st_uid << ":"
      << st.st_gid;
    const std::string name = fs::relative(p, dir).string();
    if (S_ISREG(st.st_mode)) {
      v << " " << content_hash(p);
      // A fact of its own, so a lost mtime reads apart from lost bytes.
      s["mtime " + name] =
          std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
    } else if (S_ISLNK(st.st_mode)) {
      v << " -> " << fs::read_symlink(p, ec).string();
    }
    s["file " + name] = v.str();
  }
}

// Space of the filesystem holding `dir` as df counts it: a fill or burn file
// that is gone but still held open shows here and nowhere else.
inline void add_free_space(HostState &s, const fs::path &dir) {
  struct statvfs v {};
  if (::statvfs(dir.c_str(), &v) != 0) return;
  s["fs " + dir.string() + " available bytes"] =
      std::to_string(static_cast<std::uint64_t>(v.f_bavail) * v.f_frsize);
  s["fs " + dir.string() + " used bytes"] =
      std::to_string(static_cast<std::uint64_t>(v.f_blocks - v.f_bfree) * v.f_frsize);
}

// A process's state letter (/proc/<pid>/stat): 'T' while a stop is left.
inline void add_process(HostState &s, pid_t pid) {
  const char state = process_state(pid);
  s["process " + std::to_string(pid) + " state"] = state ? std::string(1, state) : "gone";
}

// Who traces the process (TracerPid, 0 for none): a strace fault left.
inline void add_tracer(HostState &s, pid_t pid) {
  s["process " + std::to_string(pid) + " tracer"] = std::to_string(tracer_pid(pid));
}

// /dev/shm entries whose name starts with `prefix`, with their sizes (the
// mem plugin's page-cache files live there).
inline void add_shm(HostState &s, const std::string &prefix) {
  std::error_code ec;
  for (const auto &e : fs::directory_iterator("/dev/shm", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    s["shm " + name] = std::to_string(e.file_size(ec)) + " bytes";
  }
}

// What differs from `before` to `after`, one fact a line; empty if nothing.
inline std::string difference(const HostState &before, const HostState &after) {
  std::string out;
  for (const auto &[k, v] : before) {
    auto it = after.find(k);
    if (it == after.end())
      out += "  gone: " + k + " (was " + v + ")\n";
    else if (it->second != v)
      out += "  changed: " + k + ": " + v + " -> " + it->second + "\n";
  }
  for (const auto &[k, v] : after)
    if (!before.count(k)) out += "  left: " + k + " (" + v + ")\n";
  return out;
}

}  // namespace blade::test::crash
