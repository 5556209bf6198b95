#include "dns_marked_file.hpp"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include <blade/plugin.hpp>

#include "../../common/durable_file.hpp"
#include "../../common/handles.hpp"

#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x00002000  // linux/stat.h, kernel 5.8
#endif

namespace blade::network {

using plugins::errno_message;
using plugins::UniqueFd;

namespace {

// One line of a text: its content and whether a newline ends it.
struct Line {
  std::string_view content;
  bool newline = false;
};

std::vector<Line> split_lines(std::string_view text) {
  std::vector<Line> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) {
      out.push_back({text.substr(pos), false});
      break;
    }
    out.push_back({text.substr(pos, nl - pos), true});
    pos = nl + 1;
  }
  return out;
}

std::string_view trim_end(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool is_added(std::string_view content, std::string_view marker) {
  return trim_end(content).ends_with(marker);
}

}  // namespace

std::string real_config_file(const std::string &path) {
  char buf[PATH_MAX];
  if (!::realpath(path.c_str(), buf))
    throw sdk::FailedPrecondition(errno_message("cannot resolve", path));
  struct stat st {};
  if (::stat(buf, &st) != 0) throw sdk::FailedPrecondition(errno_message("cannot stat", buf));
  if (!S_ISREG(st.st_mode))
    throw sdk::FailedPrecondition(std::string(buf) + " (" + path + ") is not a regular file");
  return buf;
}

ConfigText read_config(const std::string &file) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) throw sdk::FailedPrecondition(errno_message("cannot open", file));
  ConfigText out;
  struct statx stx {};
  if (::statx(fd.get(), "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx) != 0)
    throw sdk::FailedPrecondition(errno_message("cannot stat", file));
  out.mode = stx.stx_mode & 07777;
  out.uid = stx.stx_uid;
  out.gid = stx.stx_gid;
  out.mount_point = (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) != 0 &&
                    (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw sdk::FailedPrecondition(errno_message("cannot read", file));
    if (n == 0) break;
    out.bytes.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::string write_config(const std::string &file, const ConfigText &old, std::string_view bytes,
                         std::string_view uid) {
  if (!old.mount_point) {
    plugins::FileAttrs attrs;
    attrs.mode = old.mode;
    attrs.uid = old.uid;
    attrs.gid = old.gid;
    plugins::replace_file(file, bytes, attrs, uid);
    return "rename";
  }
  // A mount point: the mount holds this very inode, so only its content
  // can change: written over, then cut to the new length.
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) throw sdk::FailedPrecondition(errno_message("cannot open", file));
  plugins::write_all_fd(fd.get(), bytes, file);
  if (::ftruncate(fd.get(), static_cast<off_t>(bytes.size())) != 0)
    throw sdk::FailedPrecondition(errno_message("cannot truncate", file));
  if (::fsync(fd.get()) != 0) throw sdk::FailedPrecondition(errno_message("cannot sync", file));
  return "in-place";
}

std::string added_marker(std::string_view uid) {
  return " # blade:" + std::string(uid);
}

std::string hidden_prefix(std::string_view uid) {
  return "#blade:" + std::string(uid) + " ";
}

std::string append_line(std::string_view text, std::string_view line) {
  std::string out(text);
  if (out.empty() || out.back() == '\n') return out.append(line).append("\n");
  return out.append("\n").append(line);
}

std::string hide_lines(std::string_view text, std::string_view start, std::string_view uid) {
  return edit_lines(text, uid, [&](std::string_view content) {
    while (!content.empty() && (content.front() == ' ' || content.front() == '\t'))
      content.remove_prefix(1);
    return LineEdit{content.starts_with(start), {}};
  });
}

std::string edit_lines(std::string_view text, std::string_view uid,
                       const std::function<LineEdit(std::string_view)> &edit) {
  std::string out;
  for (const Line &l : split_lines(text)) {
    const LineEdit e = edit(l.content);
    if (e.hide) out += hidden_prefix(uid);
    out += l.content;
    if (e.hide && !e.copy.empty()) {
      // The copy takes the line's newline; a last line without one gets
      // one before the copy instead, which remove_marks takes away with it.
      out += '\n';
      out += e.copy;
      out += added_marker(uid);
    }
    if (l.newline) out += '\n';
  }
  return out;
}

std::string remove_marks(std::string_view text, std::string_view uid) {
  const std::string marker = added_marker(uid);
  const std::string prefix = hidden_prefix(uid);
  std::string out;
  for (const Line &l : split_lines(text)) {
    if (is_added(l.content, marker)) {
      // A last line without a newline was appended after one put before
      // it (append_line): that newline goes with it.
      if (!l.newline && !out.empty() && out.back() == '\n') out.pop_back();
      continue;
    }
    std::string_view content = l.content;
    if (content.starts_with(prefix)) content.remove_prefix(prefix.size());
    out += content;
    if (l.newline) out += '\n';
  }
  return out;
}

bool has_marks(std::string_view text, std::string_view uid) {
  const std::string marker = added_marker(uid);
  const std::string prefix = hidden_prefix(uid);
  for (const Line &l : split_lines(text))
    if (is_added(l.content, marker) || l.content.starts_with(prefix)) return true;
  return false;
}

std::string undo_marks(const std::string &file, std::string_view uid) {
  ::unlink(plugins::temp_path_for(file, uid).c_str());
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0 && errno == ENOENT) return "unchanged";
  const ConfigText now = read_config(file);
  if (!has_marks(now.bytes, uid)) return "unchanged";
  return write_config(file, now, remove_marks(now.bytes, uid), uid);
}

}  // namespace blade::network
