// Writing a file so that a crash at any instant leaves either the old bytes
// or the new ones, never an empty or half-written file: the new bytes go to
// a temporary file in the same directory, which is synced and renamed over
// the old one, and then the directory is synced so the rename itself is
// durable. Shared by the plugins of this repository (header only).
//
// The temporary file's name is derived from a tag the caller chooses (the
// experiment uid), so a destroy after a crash can find and remove a
// leftover without guessing: ".<name>.blade-<tag>.tmp".
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include <blade/plugin.hpp>

#include "handles.hpp"

namespace blade::plugins {

inline std::string errno_message(const std::string &what, const std::string &path) {
  return what + " " + path + ": " + std::strerror(errno);
}

// The directory part of an absolute path ("/" for "/x").
inline std::string directory_of(const std::string &path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Writes all of `bytes`, retrying short writes; throws naming `path`.
inline void write_all_fd(int fd, std::string_view bytes, const std::string &path) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw sdk::FailedPrecondition(errno_message("cannot write", path));
    done += static_cast<std::size_t>(n);
  }
}

// What a write must survive. A crash of the writing process alone loses
// nothing written (the bytes are in the kernel's page cache), so the
// fsyncs are for a power cut or a kernel crash; state about something a
// reboot removes anyway (a qdisc, a socket) has nothing to undo after
// those, and may skip them.
enum class Survives { PowerCut, ProcessCrash };

// Makes the entries of `dir` (a creation, rename or removal in it) durable.
inline void sync_dir(const std::string &dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw sdk::FailedPrecondition(errno_message("cannot open directory", dir));
  // Some filesystems cannot sync a directory (EINVAL); nothing more to do there.
  if (::fsync(fd.get()) != 0 && errno != EINVAL)
    throw sdk::FailedPrecondition(errno_message("cannot sync directory", dir));
}

// What the new file gets besides its bytes. Unset owner keeps the writer's;
// unset times are "now", as for any write.
struct FileAttrs {
  mode_t mode = 0600;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::optional<struct timespec> atime;
  std::optional<struct timespec> mtime;
};

// ".<name>.blade-<tag>.tmp" beside `path`.
inline std::string temp_path_for(const std::string &path, std::string_view tag) {
  const std::string dir = directory_of(path);
  const std::string name = path.substr(path.find_last_of('/') + 1);
  return (dir == "/" ? "" : dir) + "/." + name + ".blade-" + std::string(tag) + ".tmp";
}

// Removes `path` when the object goes, unless told it is kept.
class UnlinkGuard {
 public:
  explicit UnlinkGuard(std::string path) : path_(std::move(path)) {}
  UnlinkGuard(const UnlinkGuard &) = delete;
  UnlinkGuard &operator=(const UnlinkGuard &) = delete;
  ~UnlinkGuard() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  void keep() { path_.clear(); }

 private:
  std::string path_;
};

// Replaces (or creates) `path` with `bytes` and `attrs`: temp file, fsync,
// rename, fsync of the directory (no fsync for Survives::ProcessCrash; the
// rename still makes the replace all or nothing). The file gets a new
// inode: hard links to the old one keep the old bytes, and a process
// holding it open keeps reading the old bytes (which is what a running
// shell script needs).
inline void replace_file(const std::string &path, std::string_view bytes, const FileAttrs &attrs,
                         std::string_view tag, Survives survives = Survives::PowerCut) {
  const bool sync = survives == Survives::PowerCut;
  const std::string tmp = temp_path_for(path, tag);
  ::unlink(tmp.c_str());  // a leftover of an earlier crash under the same tag
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) throw sdk::FailedPrecondition(errno_message("cannot create", tmp));
  UnlinkGuard guard(tmp);
  write_all_fd(fd.get(), bytes, tmp);
  // Owner first: chown clears set-id bits, so the mode goes after it.
  if ((attrs.uid || attrs.gid) &&
      ::fchown(fd.get(), attrs.uid ? *attrs.uid : static_cast<uid_t>(-1),
               attrs.gid ? *attrs.gid : static_cast<gid_t>(-1)) != 0)
    throw sdk::FailedPrecondition(errno_message("cannot chown", tmp));
  if (::fchmod(fd.get(), attrs.mode & 07777) != 0)
    throw sdk::FailedPrecondition(errno_message("cannot chmod", tmp));
  if (attrs.mtime || attrs.atime) {
    struct timespec times[2];
    times[0] = attrs.atime ? *attrs.atime : timespec{0, UTIME_OMIT};
    times[1] = attrs.mtime ? *attrs.mtime : timespec{0, UTIME_OMIT};
    if (::futimens(fd.get(), times) != 0)
      throw sdk::FailedPrecondition(errno_message("cannot set times of", tmp));
  }
  if (sync && ::fsync(fd.get()) != 0)
    throw sdk::FailedPrecondition(errno_message("cannot sync", tmp));
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    throw sdk::FailedPrecondition(errno_message("cannot rename " + tmp + " to", path));
  guard.keep();
  if (sync) sync_dir(directory_of(path));
}

}  // namespace blade::plugins
