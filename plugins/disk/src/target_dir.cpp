#include "target_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <blade/plugin.hpp>

#include "../../common/path_guard.hpp"

namespace blade::disk {
namespace {

void check_uid(std::string_view uid) {
  const bool plain =
      !uid.empty() && uid.size() <= 128 && std::all_of(uid.begin(), uid.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_';
      });
  if (!plain) throw sdk::InvalidArgument("uid: not a plain name: " + std::string(uid));
}

// <dir>/<prefix><uid><suffix>. A dry run has no uid yet: its plan shows
// the name with a placeholder.
std::string owned(const std::string &dir, std::string_view prefix, std::string_view uid,
                  std::string_view suffix) {
  if (uid.empty())
    uid = "<uid>";
  else
    check_uid(uid);
  std::string out = dir;
  if (out.empty() || out.back() != '/') out += '/';
  return out + std::string(prefix) + std::string(uid) + std::string(suffix);
}

}  // namespace

std::string resolve_target_dir(std::string_view path,
                               const std::vector<std::string> &protected_paths) {
  const std::string p(path);
  if (p.empty() || p.front() != '/')
    throw sdk::InvalidArgument("path: must be an absolute directory, got '" + p + "'");
  std::unique_ptr<char, decltype(&std::free)> real(::realpath(p.c_str(), nullptr), &std::free);
  if (!real) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR)
      throw sdk::InvalidArgument("path: " + p + " does not exist");
    throw sdk::InvalidArgument("path: cannot resolve " + p + ": " + std::strerror(err));
  }
  // Before the other checks: a protected dir is refused as such, whatever
  // its mode (/sys is read-only, /proc writable for root).
  plugins::refuse_protected("path", real.get(), protected_paths, false);
  struct stat st {};
  if (::stat(real.get(), &st) != 0)
    throw sdk::InvalidArgument("path: cannot stat " + p + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) throw sdk::InvalidArgument("path: " + p + " is not a directory");
  if (::access(real.get(), W_OK) != 0)
    throw sdk::InvalidArgument("path: " + p + " is not writable: " + std::strerror(errno));
  return real.get();
}

std::optional<std::string> flagged_dir(const sdk::Request &req) {
  const std::string p = req.flag_or("path", "/");
  if (p.empty() || p.front() != '/') return std::nullopt;
  std::unique_ptr<char, decltype(&std::free)> real(::realpath(p.c_str(), nullptr), &std::free);
  if (!real) return std::nullopt;
  return std::string(real.get());
}

double FsUsage::used_percent() const {
  const std::uint64_t whole = used + available;
  return whole == 0 ? 100.0 : 100.0 * static_cast<double>(used) / static_cast<double>(whole);
}

double FsUsage::unavailable_percent() const {
  return size == 0 ? 100.0
                   : 100.0 * static_cast<double>(size - std::min(size, available)) /
                         static_cast<double>(size);
}

FsUsage FsUsage::after_taking(std::uint64_t bytes) const {
  FsUsage after = *this;
  bytes = std::min(bytes, available);
  after.used += bytes;
  after.available -= bytes;
  return after;
}

std::uint64_t FsUsage::safety_floor() const {
  return std::min<std::uint64_t>(size / 100, 1024 * kMiB);
}

FsUsage usage_of(const std::string &dir) {
  struct statvfs s {};
  if (::statvfs(dir.c_str(), &s) != 0)
    throw sdk::FailedPrecondition("path: statvfs " + dir + ": " + std::strerror(errno));
  const std::uint64_t unit = s.f_frsize ? s.f_frsize : s.f_bsize;
  FsUsage u;
  u.size = static_cast<std::uint64_t>(s.f_blocks) * unit;
  u.used = static_cast<std::uint64_t>(s.f_blocks - std::min(s.f_blocks, s.f_bfree)) * unit;
  u.available = static_cast<std::uint64_t>(s.f_bavail) * unit;
  return u;
}

nlohmann::json to_json(const FsUsage &u) {
  return {{"size_bytes", u.size},
          {"used_bytes", u.used},
          {"available_bytes", u.available},
          {"used_percent", u.used_percent()},
          {"unavailable_percent", u.unavailable_percent()}};
}

std::string fill_file(const std::string &dir, std::string_view uid) {
  return owned(dir, "blade-fill-", uid, ".dat");
}
std::string burn_read_file(const std::string &dir, std::string_view uid) {
  return owned(dir, "blade-burn-", uid, ".read");
}
std::string burn_write_file(const std::string &dir, std::string_view uid) {
  return owned(dir, "blade-burn-", uid, ".write");
}

void remove_owned_file(const std::string &file, std::string_view uid) {
  check_uid(uid);
  const auto slash = file.rfind('/');
  if (file.empty() || file.front() != '/' || slash == std::string::npos)
    throw sdk::FailedPrecondition("restore record names a relative file: " + file);
  const std::string dir = file.substr(0, slash + 1);
  if (file != fill_file(dir, uid) && file != burn_read_file(dir, uid) &&
      file != burn_write_file(dir, uid)) {
    throw sdk::FailedPrecondition("restore record names a file this experiment did not create: " +
                                  file);
  }
  if (::unlink(file.c_str()) != 0 && errno != ENOENT)
    throw sdk::FailedPrecondition("cannot remove " + file + ": " + std::strerror(errno));
}

UniqueFd open_owned_file(const std::string &file, int flags) {
  return UniqueFd(::open(file.c_str(), flags | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
}

UniqueFd create_owned_file(const std::string &file, int flags) {
  UniqueFd fd = open_owned_file(file, flags);
  if (!fd)
    throw sdk::FailedPrecondition("path: cannot create " + file + ": " + std::strerror(errno));
  return fd;
}

int allocate(int fd, std::uint64_t bytes) {
  if (::fallocate(fd, 0, 0, static_cast<off_t>(bytes)) == 0) return 0;
  return errno == ENOSYS ? EOPNOTSUPP : errno;
}

nlohmann::json restore_record(const sdk::Request &req) {
  auto record = nlohmann::json::parse(req.restore_json().value_or("{}"), nullptr, false);
  return record.is_object() ? record : nlohmann::json::object();
}

void remove_owned_files(const std::vector<std::string> &files, std::string_view uid) {
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (std::find(files.begin(), files.begin() + static_cast<std::ptrdiff_t>(i), files[i]) !=
        files.begin() + static_cast<std::ptrdiff_t>(i))
      continue;
    remove_owned_file(files[i], uid);
  }
}

}  // namespace blade::disk
