// Claims: which active experiment owns a resource (a file path, a pid, a
// network interface ...), so that a second fault on the same resource is
// refused instead of stacked. Two faults on one resource restore correctly
// only in one order (chmod 000 then chmod 777, destroyed in create order,
// leaves 000), and nothing guarantees that order.
//
// A claim is one small file under the plugin's state dir, named by a hash
// of the resource and holding the owner's uid, so it survives a daemon
// restart: a daemon started again with faults still in place refuses what
// it refused before. It is taken as a write-ahead step of create (written to
// a temp file, synced, then link()ed to its name, which fails if a claim is
// there: only one taker wins) and removed by destroy. A claim whose owner is
// gone (the caller decides what "gone" means for its resources, e.g. the
// owner's state is removed, or the stopped process exited) is taken over.
// Header only, shared by the plugins of this repository.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <blade/plugin.hpp>
#include <nlohmann/json.hpp>

#include "durable_file.hpp"
#include "handles.hpp"

namespace blade::plugins {

struct Claim {
  std::string uid;       // the owning experiment
  std::string resource;  // e.g. "path:/etc/app.conf", "pid:4242"
  nlohmann::json note;   // what the owner wants remembered (a start time ...)
};

class ResourceClaims {
 public:
  // `dir` is created on first use, private (0700). Survives::ProcessCrash:
  // claims on what a reboot frees anyway (an interface's qdiscs) are taken
  // and released without fsync.
  explicit ResourceClaims(std::string dir, Survives survives = Survives::PowerCut)
      : dir_(std::move(dir)), sync_(survives == Survives::PowerCut) {}

  const std::string &dir() const { return dir_; }

  // Every readable claim (a half-written temp is no claim: the name only
  // exists once the content is complete).
  std::vector<Claim> all() const {
    std::vector<Claim> out;
    DirPtr d(::opendir(dir_.c_str()));
    if (!d) return out;
    while (const dirent *e = ::readdir(d.get())) {
      std::string name = e->d_name;
      if (name.size() != 32 || name.find('.') != std::string::npos) continue;
      if (auto c = read(dir_ + "/" + name)) out.push_back(std::move(*c));
    }
    return out;
  }

  // The live claim of another experiment that `conflicts(other resource)`
  // says collides with what `uid` wants; `stale(claim)` true lets it go.
  template <class Conflicts, class Stale>
  std::optional<Claim> conflict(std::string_view uid, Conflicts conflicts, Stale stale) const {
    for (auto &c : all())
      if (c.uid != uid && conflicts(c.resource) && !stale(c)) return c;
    return std::nullopt;
  }

  // Takes `resource` for `uid`, or throws AlreadyExists "<flag>: ... held by
  // active experiment <owner>" when a live claim of another experiment
  // collides. Taking a claim `uid` holds already is a no-op.
  template <class Conflicts, class Stale>
  void take(std::string_view flag, const std::string &resource, std::string_view uid,
            const nlohmann::json &note, Conflicts conflicts, Stale stale) {
    if (auto c = conflict(uid, conflicts, stale)) throw held(flag, resource, *c);
    make_dir();
    const std::string path = file_for(resource);
    const std::string tmp = path + ".take-" + std::string(uid);
    {
      ::unlink(tmp.c_str());
      UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
      if (!fd) throw sdk::FailedPrecondition(errno_message("cannot create", tmp));
      const std::string text =
          nlohmann::json{{"uid", uid}, {"resource", resource}, {"note", note}}.dump();
      write_all_fd(fd.get(), text, tmp);
      if (sync_ && ::fsync(fd.get()) != 0)
        throw sdk::FailedPrecondition(errno_message("cannot sync", tmp));
    }
    UnlinkGuard guard(tmp);
    if (::link(tmp.c_str(), path.c_str()) != 0) {
      if (errno != EEXIST) throw sdk::FailedPrecondition(errno_message("cannot create", path));
      // Someone's claim on this very resource: ours already, or one the
      // check above found stale (or unreadable), which is replaced whole.
      auto existing = read(path);
      if (existing && existing->uid != uid && !stale(*existing))
        throw held(flag, resource, *existing);
      if (!existing || existing->uid != uid) {
        if (::rename(tmp.c_str(), path.c_str()) != 0)
          throw sdk::FailedPrecondition(errno_message("cannot replace", path));
        guard.keep();
      }
    }
    if (sync_) sync_dir(dir_);
  }

  // Removes every claim `uid` holds (found by content, so no record is
  // needed) and any temp it left.
  void release_all(std::string_view uid) {
    DirPtr d(::opendir(dir_.c_str()));
    if (!d) return;
    std::vector<std::string> doomed;
    const std::string temp_suffix = ".take-" + std::string(uid);
    while (const dirent *e = ::readdir(d.get())) {
      std::string name = e->d_name;
      if (name.ends_with(temp_suffix)) {
        doomed.push_back(dir_ + "/" + name);
        continue;
      }
      if (name.size() != 32 || name.find('.') != std::string::npos) continue;
      auto c = read(dir_ + "/" + name);
      if (c && c->uid == uid) doomed.push_back(dir_ + "/" + name);
    }
    d.reset();
    for (const auto &p : doomed)
      if (::unlink(p.c_str()) != 0 && errno != ENOENT)
        throw sdk::FailedPrecondition(errno_message("cannot remove", p));
    if (!doomed.empty() && sync_) sync_dir(dir_);
  }

  // The uid holding exactly `resource`, if any (stale or not).
  std::optional<std::string> owner_of(const std::string &resource) const {
    auto c = read(file_for(resource));
    if (!c) return std::nullopt;
    return c->uid;
  }

  // <dir>/<32 hex digits>: two FNV-1a 64 hashes with different seeds, so
  // distinct resources never share a name in practice; the content names
  // the resource anyway.
  std::string file_for(const std::string &resource) const {
    auto fnv = [&](std::uint64_t h) {
      for (unsigned char c : resource) {
        h ^= c;
        h *= 1099511628211ULL;
      }
      return h;
    };
    char name[33];
    std::snprintf(name, sizeof name, "%016llx%016llx",
                  static_cast<unsigned long long>(fnv(1469598103934665603ULL)),
                  static_cast<unsigned long long>(fnv(0x9e3779b97f4a7c15ULL)));
    return dir_ + "/" + name;
  }

 private:
  static sdk::AlreadyExists held(std::string_view flag, const std::string &resource,
                                 const Claim &owner) {
    std::string what = resource.substr(resource.find(':') + 1);
    std::string also = owner.resource == resource
                           ? ""
                           : " (through " + owner.resource.substr(owner.resource.find(':') + 1) + ")";
    return sdk::AlreadyExists(std::string(flag) + ": " + what +
                              " is already the target of active experiment " + owner.uid + also +
                              "; destroy it first");
  }

  static std::optional<Claim> read(const std::string &path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return std::nullopt;
    std::string text;
    char buf[1024];
    for (;;) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      text.append(buf, static_cast<std::size_t>(n));
    }
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object() || !j.contains("uid") || !j["uid"].is_string() ||
        !j.contains("resource") || !j["resource"].is_string())
      return std::nullopt;
    return Claim{j["uid"], j["resource"], j.value("note", nlohmann::json())};
  }

  void make_dir() const {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) throw sdk::FailedPrecondition("cannot create " + dir_ + ": " + ec.message());
    ::chmod(dir_.c_str(), 0700);
  }

  std::string dir_;
  bool sync_ = true;
};

}  // namespace blade::plugins
