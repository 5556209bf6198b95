// SPDX-License-Identifier: Apache-2.0
//
// An example Blade plugin whose fault is held by a background thread and
// can end on its own: `lease hold --path P --ttl-ms N` creates the lease
// file P (holding the experiment's uid) and starts a watcher thread. The
// fault ends without a destroy when someone removes P, or when the lease
// expires after N ms (the watcher removes P itself); either way the watcher
// tells the daemon through fault_ended, which marks the experiment failed
// with the reason. destroy stops the watcher first (so it reports nothing)
// and removes P if it still holds the uid.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

#include <blade/plugin.hpp>
#include <nlohmann/json.hpp>

namespace {

constexpr const char *kSpec = R"yaml(
version: v1
kind: plugin
items:
- target: lease
  shortDesc: A lease file held by a background thread
  longDesc: Shows a fault that can end on its own and tells the daemon so.
  scope: host
  actions:
  - action: hold
    shortDesc: Hold a lease file until destroyed, removed, or expired
    flags:
    - name: path
      desc: absolute path of the lease file to create (must not exist)
      required: true
      type: path
    - name: ttl-ms
      desc: the lease expires (and the fault ends on its own) after this long; 0 never
      type: int
      min: 0
      max: 86400000
      default: "0"
    example: |
      blade create lease hold --path /tmp/blade-lease --ttl-ms 60000
)yaml";

// The file holds the uid, so destroy (also after a restart) removes only
// the lease this experiment made.
bool holds_uid(const std::string &path, std::string_view uid) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[64] = {};
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  return n > 0 && std::string_view(buf, static_cast<std::size_t>(n)) == uid;
}

class LeasePlugin {
 public:
  explicit LeasePlugin(blade::sdk::Host host) : host_(host) {}

  // Shutdown: every watcher stops (std::jthread joins on destruction). The
  // lease files stay: the faults are still active, and the daemon destroys
  // them through the next instance.
  ~LeasePlugin() = default;

  blade::sdk::Outcome create(const blade::sdk::Request &req, blade::sdk::Call &call) {
    const std::string path = req.flag_or("path", "");
    const std::int64_t ttl_ms = req.flag_int("ttl-ms", 0);
    if (ttl_ms < 0) throw blade::sdk::InvalidArgument("ttl-ms: must not be negative");
    const std::string uid(req.uid());

    const std::string restore = nlohmann::json{{"path", path}}.dump();
    call.save_restore(restore);  // the file may exist from here on
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      if (errno == EEXIST) throw blade::sdk::AlreadyExists("path: " + path + " already exists");
      throw blade::sdk::FailedPrecondition("path: cannot create " + path + ": " + std::strerror(errno));
    }
    bool written = ::write(fd, uid.data(), uid.size()) == static_cast<ssize_t>(uid.size());
    ::close(fd);
    if (!written) {
      ::unlink(path.c_str());  // leave nothing behind on failure
      throw blade::sdk::FailedPrecondition("path: cannot write " + path);
    }

    std::lock_guard lock(mu_);
    watchers_[uid] = std::jthread([this, uid, path, ttl_ms](std::stop_token stop) {
      watch(stop, uid, path, std::chrono::milliseconds(ttl_ms));
    });
    host_.info("lease " + path + " held for experiment " + uid);
    nlohmann::json result = {{"path", path}, {"ttl_ms", ttl_ms}};
    return {result.dump(), restore};
  }

  // Idempotent, and needs nothing but the record or the flags: after a
  // restart this instance never had a watcher for the uid.
  void destroy(const blade::sdk::Request &req, blade::sdk::Call &) {
    const std::string uid(req.uid());
    std::jthread watcher;
    {
      std::lock_guard lock(mu_);
      auto it = watchers_.find(uid);
      if (it != watchers_.end()) {
        watcher = std::move(it->second);
        watchers_.erase(it);
      }
    }
    if (watcher.joinable()) {
      watcher.request_stop();
      watcher.join();  // from here on it reports nothing for this uid
    }
    auto record = nlohmann::json::parse(req.restore_json().value_or("{}"), nullptr, false);
    std::string path = req.flag_or("path", "");
    if (record.is_object() && record.contains("path")) path = record["path"].get<std::string>();
    if (!holds_uid(path, uid)) return;  // gone, or not ours: nothing to undo
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      throw blade::sdk::FailedPrecondition("cannot remove " + path + ": " + std::strerror(errno));
    host_.info("lease " + path + " released");
  }

 private:
  // Runs on the watcher thread until stopped (destroy, shutdown) or until
  // the fault ends on its own. Host callbacks are thread-safe.
  void watch(std::stop_token stop, const std::string &uid, const std::string &path,
             std::chrono::milliseconds ttl) {
    const auto expires = std::chrono::steady_clock::now() + ttl;
    std::mutex m;
    std::condition_variable_any wake;
    std::unique_lock lock(m);
    while (!stop.stop_requested()) {
      // Polling: a lease is a plain file, and 20 ms is quick enough for a report.
      wake.wait_for(lock, stop, std::chrono::milliseconds(20), [] { return false; });
      if (stop.stop_requested()) return;
      if (!holds_uid(path, uid)) {
        host_.fault_ended(uid, "lease file " + path + " was removed");
        return;
      }
      if (ttl.count() > 0 && std::chrono::steady_clock::now() >= expires) {
        ::unlink(path.c_str());
        host_.fault_ended(uid, "lease expired after " + std::to_string(ttl.count()) + " ms");
        return;
      }
    }
  }

  blade::sdk::Host host_;
  std::mutex mu_;
  // Declared last: destroyed (stopped and joined) first at shutdown.
  std::map<std::string, std::jthread> watchers_;
};

}  // namespace

BLADE_PLUGIN(LeasePlugin, "lease", "1.0.0", kSpec)
