// Where a disk fault works: the directory named by the `path` flag, the
// usage of the filesystem holding it, and the files the plugin owns there.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <blade/plugin.hpp>
#include <nlohmann/json.hpp>

#include "../../common/handles.hpp"

namespace blade::disk {

using plugins::UniqueFd;

constexpr std::uint64_t kMiB = 1024 * 1024;

// The `path` flag as a canonical directory. Throws sdk::InvalidArgument on
// field path: relative, missing, not a directory, not writable, or one the
// daemon lives on (`protected_paths`, from the host) or under /proc or /sys:
// a fill there could starve the daemon's own database of space.
std::string resolve_target_dir(std::string_view path,
                               const std::vector<std::string> &protected_paths);

// Where a destroy looks for this experiment's files by their uid-derived
// names: the `path` flag resolved as it is now, or nullopt when it no longer
// resolves (nothing of ours can be there then). Needed because a crash before
// the first write-ahead record leaves files with no record naming them.
std::optional<std::string> flagged_dir(const sdk::Request &req);

// A filesystem's space from statvfs: used = size - free (as df counts it),
// available = what an unprivileged writer may still take.
struct FsUsage {
  std::uint64_t size = 0;       // bytes
  std::uint64_t used = 0;       // bytes
  std::uint64_t available = 0;  // bytes an unprivileged writer may still take

  // df's figure: used / (used + available), root's reserved blocks neither.
  double used_percent() const;
  // ChaosBlade's figure, the one `disk fill --percent` aims at:
  // (size - available) / size, root's reserved blocks counted as used.
  double unavailable_percent() const;
  // The filesystem once `bytes` more are taken (at most what is available).
  FsUsage after_taking(std::uint64_t bytes) const;
  // What a fill may not take unless forced: 1% of the filesystem, at most
  // 1 GiB, so the daemon (and whatever else lives there) can still write.
  std::uint64_t safety_floor() const;
};

// statvfs of `dir`; throws sdk::FailedPrecondition when it cannot be read.
FsUsage usage_of(const std::string &dir);
nlohmann::json to_json(const FsUsage &u);

// The files a fault of experiment `uid` creates in `dir`. The uid must be
// a plain name (the host's uids are); anything else is refused.
std::string fill_file(const std::string &dir, std::string_view uid);
std::string burn_read_file(const std::string &dir, std::string_view uid);
std::string burn_write_file(const std::string &dir, std::string_view uid);

// Unlinks `file` if it is absolute and named as one of experiment `uid`'s
// files (a restore record is data, and data never gets to delete anything
// else); a file already gone is success. Throws sdk::FailedPrecondition
// on any other failure.
void remove_owned_file(const std::string &file, std::string_view uid);

// Creates (or truncates) one of the plugin's own files, mode 0600. No link
// planted at the name is followed: the name is ours, the directory may be
// shared. An empty fd (errno set) when it cannot.
UniqueFd open_owned_file(const std::string &file, int flags);
// The same, throwing sdk::FailedPrecondition on field path when it cannot.
UniqueFd create_owned_file(const std::string &file, int flags);
// fallocate(2) of `bytes` from offset 0: 0 when allocated, EOPNOTSUPP when
// the filesystem cannot allocate (ENOSYS counts as that), else the errno.
int allocate(int fd, std::uint64_t bytes);
// A destroy's restore record; an empty object when there is none or it is
// not JSON.
nlohmann::json restore_record(const sdk::Request &req);

// Removes each of `files` (remove_owned_file, so only names of experiment
// `uid`), in order, skipping repeats.
void remove_owned_files(const std::vector<std::string> &files, std::string_view uid);

}  // namespace blade::disk
