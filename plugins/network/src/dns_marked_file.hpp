// The resolver's files (/etc/hosts, /etc/resolv.conf) as the dns faults
// edit them: only lines marked with the experiment's uid are added, and
// lines they hide are hidden behind a uid prefix, so destroy can undo
// exactly its own edits in the file as it is then, keeping every edit
// someone else made meanwhile, from the uid alone.
//
//   added:   "<text> # blade:<uid>"           (removed by destroy)
//   hidden:  "#blade:<uid> <original line>"   (the prefix removed by destroy)
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>

namespace blade::network {

// The file behind `path` (symlinks followed: /etc/resolv.conf is often a
// link into /run, and replacing the link by a file would cut it). Throws
// FailedPrecondition naming the file when it is missing or not a regular
// file.
std::string real_config_file(const std::string &path);

struct ConfigText {
  std::string bytes;
  mode_t mode = 0644;
  uid_t uid = 0;
  gid_t gid = 0;
  bool mount_point = false;  // the file itself is mounted (a container's, a bind mount)
};

// The whole file, with its owner, mode and whether it is a mount point.
ConfigText read_config(const std::string &file);

// Writes `bytes` as the new content of `file` (owner and mode kept).
// Normally atomic and durable: a temp file beside it, fsync, rename over
// it, fsync of the directory. A file that is a mount point cannot be
// renamed over (EBUSY), so it is rewritten in place (write, truncate,
// fsync): a reader at that instant may see a partial file. Returns how:
// "rename" or "in-place".
std::string write_config(const std::string &file, const ConfigText &old, std::string_view bytes,
                         std::string_view uid);

// " # blade:<uid>": the end of every line an experiment adds.
std::string added_marker(std::string_view uid);
// "#blade:<uid> ": the start of every line an experiment hides.
std::string hidden_prefix(std::string_view uid);

// `text` with `line` (no newline) appended as its last line. A file that
// did not end with a newline still does not: the line goes after a newline
// put before it, which remove_marks takes away with the line.
std::string append_line(std::string_view text, std::string_view line);

// `text` with every line starting with `start` (after blanks) hidden.
std::string hide_lines(std::string_view text, std::string_view start, std::string_view uid);

// What becomes of one line (its content, without the newline) in
// edit_lines: kept, or hidden with, when `copy` is not empty, `copy`
// marked as added right after it, where the hidden line stood (so that it
// keeps that line's place among the others).
struct LineEdit {
  bool hide = false;
  std::string copy;
};

// `text` with each line edited as `edit` says. remove_marks undoes it
// exactly: the copies go, the hidden lines come back.
std::string edit_lines(std::string_view text, std::string_view uid,
                       const std::function<LineEdit(std::string_view)> &edit);

// `text` without the edits of `uid`: its added lines removed (with their
// newline, or the newline before the last line when it has none), its
// hidden lines shown again. Every other byte is kept.
std::string remove_marks(std::string_view text, std::string_view uid);

// True when `text` holds an edit of `uid`.
bool has_marks(std::string_view text, std::string_view uid);

// Destroy's part: the edits of `uid` taken out of `file` as it is now (a
// missing file has none), and the temp file a crash in write_config may
// have left beside it removed. Returns how it was written, or "unchanged".
std::string undo_marks(const std::string &file, std::string_view uid);

}  // namespace blade::network
