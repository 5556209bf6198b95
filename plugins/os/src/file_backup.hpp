// Filesystem helpers shared by the file and script faults: moving a file or
// tree aside (rename when possible, else a copy keeping mode, owner and
// times), creating missing parent directories while remembering which, and
// the base64 codec of the content flag.
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

// The ancestors of `dir` (and `dir`) that do not exist, outermost first:
// what make_dirs would create, named ahead in a write-ahead record.
std::vector<std::string> missing_dirs(const std::string &dir);
// Creates `dir` and its missing ancestors (mode 0755); returns the ones it
// created, outermost first.
std::vector<std::string> make_dirs(const std::string &dir);
// Removes the dirs make_dirs created, innermost first, each only if empty.
void remove_dirs_if_empty(const std::vector<std::string> &created);

// Moves `from` to `to` (which must not exist): rename() on one filesystem,
// otherwise a copy keeping mode, owner and times, then removal of `from`.
// Both directories are synced after, so the move survives a power cut.
void move_path(const std::string &from, const std::string &to);
// Removes a file or a whole tree; missing is fine.
void remove_tree(const std::string &path);

// Whole-file bytes; throws on error.
std::string read_bytes(const std::string &path);

// Standard base64 (padding optional, whitespace ignored); nullopt if invalid.
std::optional<std::string> base64_decode(const std::string &text);

// FNV-1a 64 of the bytes, in hex: a check that a file still holds what we wrote.
std::string digest(const std::string &bytes);

// The lstat of `path` when it is still the file `record` names by its
// "dev" and "ino" (or `dev_key`/`ino_key`); nullopt when it is gone or
// replaced, or the record names none.
std::optional<struct stat> recorded_inode(const std::string &path, const nlohmann::json &record,
                                          const char *dev_key = "dev", const char *ino_key = "ino");

// A timespec as JSON [sec, nsec] and back: mtimes are restored exactly.
nlohmann::json time_json(const struct timespec &t);
std::optional<struct timespec> json_time(const nlohmann::json &j);

}  // namespace blade::os::fs
