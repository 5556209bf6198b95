// Write-ahead restore records with a local copy. Before each irreversible
// step a create saves a record destroy can undo everything from (ABI 1.2
// save_restore). The same record is first written to <dir>/record.json, a
// directory named for the experiment under the plugin's state dir, so a
// destroy the host gives no record (a crash before the host stored the
// first one, or a 1.1 host that stores records only when create returns)
// still finds what was done by the uid alone. Header only, shared by the
// plugins of this repository.
#pragma once

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <blade/plugin.hpp>
#include <nlohmann/json.hpp>

#include "durable_file.hpp"

namespace blade::plugins {

// Creates `dir` and its missing parents, private (0700): a parent made with
// the default mode would let anyone list what the private dirs under it are
// named after (uids, container ids). Parents that exist are left as they
// are. `dir` is durable as far as `survives` asks.
inline void make_private_dir(const std::string &dir, Survives survives = Survives::PowerCut) {
  std::vector<std::filesystem::path> missing;  // innermost first
  for (std::filesystem::path p = dir; !p.empty() && !std::filesystem::exists(p);
       p = p.parent_path()) {
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0700) != 0 && errno != EEXIST)
      throw sdk::FailedPrecondition("cannot create " + it->string() + ": " + std::strerror(errno));
  }
  ::chmod(dir.c_str(), 0700);
  if (!missing.empty() && survives == Survives::PowerCut) sync_dir(directory_of(dir));
}

// Saves `record` ahead of a step: the local copy first (so it is never
// older than the host's), then the host's. Throws, and the step must not be
// taken, when either cannot be stored. Survives::ProcessCrash: the local
// copy without fsync, for faults a reboot undoes by itself (the host's
// copy is the host's business either way).
inline void save_ahead(const sdk::Call &call, const std::string &dir, const nlohmann::json &record,
                       Survives survives = Survives::PowerCut) {
  make_private_dir(dir, survives);
  const std::string text = record.dump();
  replace_file(dir + "/record.json", text, FileAttrs{}, "record", survives);
  call.save_restore(text);
}

// The record a destroy works from: the local copy when there is one (it is
// at least as new as the host's), else the host's, else an empty object.
inline nlohmann::json record_for_destroy(const sdk::Request &req, const std::string &dir) {
  UniqueFd fd(::open((dir + "/record.json").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd) {
    std::string text;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      text.append(buf, static_cast<std::size_t>(n));
    }
    auto local = nlohmann::json::parse(text, nullptr, false);
    if (local.is_object()) return local;
  }
  if (auto host = req.restore_json(); host && !host->empty()) {
    auto parsed = nlohmann::json::parse(*host, nullptr, false);
    if (parsed.is_object()) return parsed;
  }
  return nlohmann::json::object();
}

}  // namespace blade::plugins
