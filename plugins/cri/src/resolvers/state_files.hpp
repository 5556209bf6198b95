// Reading a runtime's state files: JSON documents, small text files, the
// entries of a state directory, and whether a recorded init is still the
// process it was (pid plus /proc start time).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace blade::cri::state {

// The JSON document in `path`; nullopt when it is missing, unreadable or
// not JSON (a runtime may be rewriting it: the container is then skipped,
// not an error).
std::optional<nlohmann::json> read_json(const std::string &path);

// The whole file; nullopt when it cannot be read.
std::optional<std::string> read_text(const std::string &path);

// The pid in a pid file (a number, maybe a newline); nullopt otherwise.
std::optional<pid_t> read_pid_file(const std::string &path);

// The subdirectories of `dir` (no "." or ".."), sorted; nullopt with errno
// set when `dir` cannot be opened.
std::optional<std::vector<std::string>> subdirs(const std::string &dir);

// subdirs(dir), or Unavailable saying why `dir` (a runtime's state root)
// cannot be read: "no state in <dir> (<absent_hint>)" when it does not exist.
std::vector<std::string> subdirs_or_unavailable(const std::string &dir,
                                                const std::string &absent_hint);

// The start time (/proc/<pid>/stat field 22) of `pid` when it is alive (not
// a zombie) and, if the runtime recorded one, equal to `recorded`: a dead
// or reused pid is stale state, nullopt.
std::optional<std::uint64_t> live_start(pid_t pid, std::optional<std::uint64_t> recorded);

// A string of "key" in `j` when it is one; empty otherwise.
std::string string_at(const nlohmann::json &j, const char *key);

// An integer of "key" in `j` (a JSON number, or a string of digits as CRI-O
// writes its initStartTime); nullopt otherwise.
std::optional<std::uint64_t> uint_at(const nlohmann::json &j, const char *key);

// "<dir>: <strerror(err)>", for Unavailable messages.
std::string describe_errno(const std::string &dir, int err);

}  // namespace blade::cri::state
