// Filesystem helpers shared by the file and script faults: moving a file or
// tree aside (rename when possible, else a copy keeping mode, owner and
// times), creating missing parent directories while remembering which, and
// the small text codecs of the file flags.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <blade/plugin.hpp>
#include <nlohmann/json.hpp>

namespace blade::os::fs {

// lstat that answers nullopt when nothing is at `path`.
std::optional<struct stat> lstat_at(const std::string &path);
bool same_inode(const struct stat &st, unsigned long long dev, unsigned long long ino);

std::string parent_of(const std::string &path);
std::string base_of(const std::string &path);
std::string errno_text(const std::string &what, const std::string &path);

// Creates `dir` and its missing ancestors (mode 0755); returns the ones it
// created, outermost first.
std::vector<std::string> make_dirs(const std::string &dir);
// Removes the dirs make_dirs created, innermost first, each only if empty.
void remove_dirs_if_empty(const std::vector<std::string> &created);

// Moves `from` to `to` (which must not exist): rename() on one filesystem,
// otherwise a copy keeping mode, owner and times, then removal of `from`.
void move_path(const std::string &from, const std::string &to);
// Removes a file or a whole tree; missing is fine.
void remove_tree(const std::string &path);

// Writes all of `bytes` to `fd` (retrying short writes); throws naming `path`.
void write_all(int fd, std::string_view bytes, const std::string &path);

// Whole-file bytes; throws on error.
std::string read_bytes(const std::string &path);
// Replaces the file's bytes in place (same inode, so mode, owner and links stay).
void write_in_place(const std::string &path, const std::string &bytes);
// A file private to the plugin, created with mode 0600.
void write_new(const std::string &path, const std::string &bytes);

// Standard base64 (padding optional, whitespace ignored); nullopt if invalid.
std::optional<std::string> base64_decode(const std::string &text);
// \n \t \r \\ \0-less escapes: the ones an SRE types on a command line.
std::string unescape(const std::string &text);

// FNV-1a 64 of the bytes, in hex: a check that a file still holds what we wrote.
std::string digest(const std::string &bytes);

// Where experiment `uid` keeps its backups: <plugin state dir>/backups/<uid>.
std::string backup_dir(const sdk::Host &host, std::string_view uid);
// Creates `dir` and its missing parents, `dir` itself private (mode 0700).
void make_private_dir(const std::string &dir);

// A destroy's restore record as JSON; an empty object when there is none.
nlohmann::json parse_restore(const sdk::Request &req);
// The lstat of `path` when it is still the file `record` names by its
// "dev" and "ino"; nullopt when it is gone or replaced.
std::optional<struct stat> recorded_inode(const std::string &path, const nlohmann::json &record);

}  // namespace blade::os::fs
