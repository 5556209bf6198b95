// The record blade keeps of the plugins it installed: <plugin dir>/
// blade-manifest.json, one entry per plugin with the sha256 of its file, so
// `blade plugin verify` can tell a file was changed after installation.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace blade::cli {

inline constexpr const char *kManifestName = "blade-manifest.json";

struct ManifestEntry {
  std::string name;  // the plugin's own name (descriptor)
  std::string version;
  std::string abi;   // the ABI minor the plugin needs, "1.0"
  std::string file;  // file name inside the plugin dir
  std::string sha256;
  std::uintmax_t size = 0;
  std::string installed_at;          // RFC 3339 UTC
  std::string source;                // the file it was installed from
  std::vector<std::string> targets;  // "scope target action"
};

nlohmann::json to_json(const ManifestEntry &e);

class Manifest {
 public:
  // An absent file is an empty manifest; a corrupt one throws Failure.
  static Manifest load(const std::filesystem::path &dir);
  // Temp file, fsync, rename, fsync of the dir: never half a manifest.
  void save(const std::filesystem::path &dir) const;

  std::map<std::string, ManifestEntry> plugins;
};

// Lowercase hex sha256 of `bytes`.
std::string sha256_hex(std::string_view bytes);

// Holds an exclusive flock on <dir>/.blade-manifest.lock, so two blade
// runs never interleave their changes to one plugin dir.
class DirLock {
 public:
  explicit DirLock(const std::filesystem::path &dir);
  ~DirLock();
  DirLock(const DirLock &) = delete;
  DirLock &operator=(const DirLock &) = delete;

 private:
  int fd_ = -1;
};

// Writes `bytes` to `dir/name` atomically: a temp file in the same dir,
// fsync, mode `mode`, owner root:root when run as root, rename, fsync(dir).
void write_file_atomically(const std::filesystem::path &dir, const std::string &name,
                           const std::string &bytes, unsigned mode);

void fsync_dir(const std::filesystem::path &dir);

}  // namespace blade::cli
