#include "file_backup.hpp"

#include "../../common/durable_file.hpp"
#include "../../common/handles.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include <blade/plugin.hpp>

namespace blade::os::fs {

std::optional<struct stat> lstat_at(const std::string &path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  return st;
}

bool same_inode(const struct stat &st, unsigned long long dev, unsigned long long ino) {
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

std::string parent_of(const std::string &path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_of(const std::string &path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string errno_text(const std::string &what, const std::string &path) {
  return what + " " + path + ": " + std::strerror(errno);
}

namespace {

[[noreturn]] void fail(const std::string &what, const std::string &path) {
  throw sdk::FailedPrecondition(errno_text(what, path));
}

using plugins::DirPtr;
using plugins::UniqueFd;

}  // namespace

namespace {

using plugins::sync_dir;
using plugins::write_all_fd;

// Owner first: chown clears set-id bits, so the mode goes after it.
void copy_metadata(const std::string &to, const struct stat &st) {
  if (::lchown(to.c_str(), st.st_uid, st.st_gid) != 0) fail("cannot chown", to);
  if (!S_ISLNK(st.st_mode) && ::chmod(to.c_str(), st.st_mode & 07777) != 0)
    fail("cannot chmod", to);
  const struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (::utimensat(AT_FDCWD, to.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    fail("cannot set times of", to);
}

void copy_file(const std::string &from, const std::string &to, const struct stat &st) {
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) fail("cannot open", from);
  UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out) fail("cannot create", to);
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(in.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot read", from);
    if (n == 0) break;
    write_all_fd(out.get(), std::string_view(buf, static_cast<std::size_t>(n)), to);
  }
  if (::fsync(out.get()) != 0) fail("cannot sync", to);
  copy_metadata(to, st);
}

void copy_tree(const std::string &from, const std::string &to) {
  auto st = lstat_at(from);
  if (!st) fail("cannot stat", from);
  if (S_ISDIR(st->st_mode)) {
    if (::mkdir(to.c_str(), 0700) != 0) fail("cannot create directory", to);
    DirPtr dir(::opendir(from.c_str()));
    if (!dir) fail("cannot open directory", from);
    while (const dirent *e = ::readdir(dir.get())) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      copy_tree(from + "/" + name, to + "/" + name);
    }
  } else if (S_ISREG(st->st_mode)) {
    copy_file(from, to, *st);
    return;
  } else if (S_ISLNK(st->st_mode)) {
    std::string target(static_cast<std::size_t>(st->st_size) + 1, '\0');
    ssize_t n = ::readlink(from.c_str(), target.data(), target.size());
    if (n < 0) fail("cannot read link", from);
    target.resize(static_cast<std::size_t>(n));
    if (::symlink(target.c_str(), to.c_str()) != 0) fail("cannot create link", to);
  } else {
    if (::mknod(to.c_str(), st->st_mode, st->st_rdev) != 0) fail("cannot create node", to);
  }
  copy_metadata(to, *st);
}

}  // namespace

std::vector<std::string> missing_dirs(const std::string &dir) {
  std::vector<std::string> missing;
  for (std::string d = dir; d != "/" && d != "." && !lstat_at(d); d = parent_of(d))
    missing.insert(missing.begin(), d);
  return missing;
}

std::vector<std::string> make_dirs(const std::string &dir) {
  const std::vector<std::string> missing = missing_dirs(dir);
  std::vector<std::string> created;
  for (const auto &d : missing) {
    if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) {
      int saved = errno;
      remove_dirs_if_empty(created);
      errno = saved;
      fail("cannot create directory", d);
    }
    created.push_back(d);
  }
  return created;
}

void remove_dirs_if_empty(const std::vector<std::string> &created) {
  for (auto it = created.rbegin(); it != created.rend(); ++it)
    ::rmdir(it->c_str());  // ENOTEMPTY: someone put files there; they stay
}

void move_path(const std::string &from, const std::string &to) {
  if (lstat_at(to)) {
    errno = EEXIST;
    fail("cannot move to", to);
  }
  if (::rename(from.c_str(), to.c_str()) == 0) {
    sync_dir(parent_of(to));
    if (parent_of(to) != parent_of(from)) sync_dir(parent_of(from));
    return;
  }
  if (errno != EXDEV) fail("cannot move " + from + " to", to);
  // Another filesystem: copy under a temporary name, so a half copy never
  // stands at `to`, then swap it in and remove the source.
  const std::string tmp = to + ".blade-partial";
  remove_tree(tmp);
  try {
    copy_tree(from, tmp);
  } catch (...) {
    remove_tree(tmp);
    throw;
  }
  if (::rename(tmp.c_str(), to.c_str()) != 0) {
    int saved = errno;
    remove_tree(tmp);
    errno = saved;
    fail("cannot move " + tmp + " to", to);
  }
  sync_dir(parent_of(to));
  remove_tree(from);
  sync_dir(parent_of(from));
}

void remove_tree(const std::string &path) {
  auto st = lstat_at(path);
  if (!st) return;
  if (S_ISDIR(st->st_mode)) {
    std::vector<std::string> names;
    {
      DirPtr dir(::opendir(path.c_str()));
      if (!dir) fail("cannot open directory", path);
      while (const dirent *e = ::readdir(dir.get())) {
        std::string name = e->d_name;
        if (name != "." && name != "..") names.push_back(name);
      }
    }
    for (const auto &n : names)
      remove_tree(path + "/" + n);
    if (::rmdir(path.c_str()) != 0 && errno != ENOENT) fail("cannot remove", path);
  } else if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    fail("cannot remove", path);
  }
}

std::string read_bytes(const std::string &path) {
  UniqueFd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) fail("cannot open", path);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(in.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot read", path);
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::optional<std::string> base64_decode(const std::string &text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  unsigned bits = 0;
  int nbits = 0;
  std::size_t digits = 0, pad = 0;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++pad;
      continue;
    }
    if (pad > 0) return std::nullopt;  // data after padding
    int v = value(c);
    if (v < 0) return std::nullopt;
    ++digits;
    bits = (bits << 6) | static_cast<unsigned>(v);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      out.push_back(static_cast<char>((bits >> nbits) & 0xff));
    }
  }
  if (digits % 4 == 1 || pad > 2) return std::nullopt;
  if (pad > 0 && (digits + pad) % 4 != 0) return std::nullopt;
  return out;
}

std::string digest(const std::string &bytes) {
  unsigned long long h = 1469598103934665603ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", h);
  return buf;
}

std::optional<struct stat> recorded_inode(const std::string &path, const nlohmann::json &record,
                                          const char *dev_key, const char *ino_key) {
  if (!record.contains(dev_key) || !record.contains(ino_key)) return std::nullopt;
  auto st = lstat_at(path);
  if (!st || !same_inode(*st, record[dev_key].get<unsigned long long>(),
                         record[ino_key].get<unsigned long long>()))
    return std::nullopt;
  return st;
}

nlohmann::json time_json(const struct timespec &t) {
  return nlohmann::json::array({static_cast<long long>(t.tv_sec), static_cast<long long>(t.tv_nsec)});
}

std::optional<struct timespec> json_time(const nlohmann::json &j) {
  if (!j.is_array() || j.size() != 2) return std::nullopt;
  struct timespec t {};
  t.tv_sec = static_cast<time_t>(j[0].get<long long>());
  t.tv_nsec = static_cast<long>(j[1].get<long long>());
  return t;
}

}  // namespace blade::os::fs
