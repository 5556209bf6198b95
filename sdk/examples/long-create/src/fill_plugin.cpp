// SPDX-License-Identifier: Apache-2.0
//
// An example Blade plugin with a long create: `fill file --path P
// --size-mb N --step-ms S` writes an N MiB file at P, one MiB per step,
// pausing S ms between steps (a throttle that spares the disk's other
// users). Create reports progress after each step and stops early, leaving
// nothing behind, when the daemon cancels the call (CANCELLED) or its
// deadline passes (TIMEOUT). destroy removes the file.
//
// The data is written under a name of its own (P.blade-<uid>.part, so
// destroy finds it from the uid alone) and linked to P only when complete:
// nobody sees a half-written P, and link() never replaces a file that was
// there before.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <blade/plugin.hpp>
#include <nlohmann/json.hpp>

namespace {

constexpr const char *kSpec = R"yaml(
version: v1
kind: plugin
items:
- target: fill
  shortDesc: Fill a file, slowly
  longDesc: Shows a long create that reports progress and honours cancellation and the deadline.
  scope: host
  actions:
  - action: file
    shortDesc: Write a file of the given size until the experiment is destroyed
    flags:
    - name: path
      desc: absolute path of the file to write (must not exist)
      required: true
      type: path
    - name: size-mb
      desc: size of the file in MiB
      type: int
      min: 1
      max: 4096
      default: "16"
    - name: step-ms
      desc: pause after each MiB written
      type: int
      min: 0
      max: 10000
      default: "0"
    example: |
      blade create fill file --path /var/tmp/blade-fill --size-mb 512 --step-ms 10
)yaml";

constexpr std::size_t kStep = 1024 * 1024;

std::string part_name(const std::string &path, std::string_view uid) {
  return path + ".blade-" + std::string(uid) + ".part";
}

std::string error_text(const std::string &what, const std::string &path) {
  return what + " " + path + ": " + std::strerror(errno);
}

// Closes the descriptor and, unless released, removes the part file: every
// early return of create (cancel, deadline, error) leaves nothing behind.
class PartFile {
 public:
  PartFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  PartFile(const PartFile &) = delete;
  PartFile &operator=(const PartFile &) = delete;
  ~PartFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!kept_) ::unlink(path_.c_str());
  }
  int fd() const { return fd_; }
  void keep() { kept_ = true; }

 private:
  std::string path_;
  int fd_;
  bool kept_ = false;
};

class FillPlugin {
 public:
  explicit FillPlugin(blade::sdk::Host host) : host_(host) {}

  blade::sdk::Outcome create(const blade::sdk::Request &req, blade::sdk::Call &call) {
    const std::string path = req.flag_or("path", "");
    const std::int64_t size_mb = req.flag_int("size-mb", 16);
    const std::int64_t step_ms = req.flag_int("step-ms", 0);
    if (size_mb < 1) throw blade::sdk::InvalidArgument("size-mb: must be at least 1");
    if (step_ms < 0) throw blade::sdk::InvalidArgument("step-ms: must not be negative");
    const std::string part = part_name(path, req.uid());

    nlohmann::json restore = {{"path", path}, {"part", part}};
    call.save_restore(restore.dump());  // the part file may exist from here on
    int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      if (errno == ENOENT) throw blade::sdk::InvalidArgument("path: directory of " + path + " does not exist");
      throw blade::sdk::FailedPrecondition(error_text("cannot create", part));
    }
    PartFile file(part, fd);

    const std::vector<char> chunk(kStep, 'b');
    for (std::int64_t done = 0; done < size_mb; ++done) {
      // Check before each step: the deadline first, since the host also
      // reports a passed deadline as "cancelled".
      if (call.remaining_ms() <= 0)
        throw blade::sdk::Error(BLADE_STATUS_TIMEOUT, "deadline passed after " +
                                                          std::to_string(done) + " of " +
                                                          std::to_string(size_mb) + " MiB; nothing left behind");
      if (call.cancelled())
        throw blade::sdk::Cancelled("cancelled after " + std::to_string(done) + " of " +
                                    std::to_string(size_mb) + " MiB; nothing left behind");
      if (::write(file.fd(), chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size()))
        throw blade::sdk::FailedPrecondition(error_text("cannot write", part));
      call.progress(static_cast<int>((done + 1) * 100 / size_mb),
                    std::to_string(done + 1) + " of " + std::to_string(size_mb) + " MiB");
      if (step_ms > 0 && done + 1 < size_mb) pause(call, std::chrono::milliseconds(step_ms));
    }
    if (::fsync(file.fd()) != 0) throw blade::sdk::FailedPrecondition(error_text("cannot sync", part));
    struct stat st {};
    ::fstat(file.fd(), &st);

    // Destroy removes `path` only while it is still the file made here.
    restore["dev"] = st.st_dev;
    restore["ino"] = st.st_ino;
    call.save_restore(restore.dump());  // `path` may exist from here on
    if (::link(part.c_str(), path.c_str()) != 0) {
      if (errno == EEXIST) throw blade::sdk::AlreadyExists("path: " + path + " already exists");
      throw blade::sdk::FailedPrecondition(error_text("cannot create", path));
    }
    // `file` removes the part name on return; the data lives on under `path`.
    host_.info("filled " + path + " with " + std::to_string(size_mb) + " MiB");
    nlohmann::json result = {{"path", path}, {"bytes", size_mb * static_cast<std::int64_t>(kStep)}};
    return {result.dump(), restore.dump()};
  }

  // Works from any record create saved, or none (then only the uid-named
  // part file can exist). Idempotent.
  void destroy(const blade::sdk::Request &req, blade::sdk::Call &) {
    auto restore = nlohmann::json::parse(req.restore_json().value_or("{}"), nullptr, false);
    if (!restore.is_object()) restore = nlohmann::json::object();
    const std::string path = restore.value("path", req.flag_or("path", ""));
    ::unlink(restore.value("part", part_name(path, req.uid())).c_str());
    if (!restore.contains("ino")) return;  // never linked to `path`
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return;  // already gone
    if (st.st_ino != restore["ino"].get<ino_t>() || st.st_dev != restore["dev"].get<dev_t>()) {
      host_.warn(path + " was replaced by another file; leaving it");
      return;
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      throw blade::sdk::FailedPrecondition(error_text("cannot remove", path));
    host_.info("removed " + path);
  }

 private:
  // Sleeps in short slices so a cancel or the deadline is seen within ~10 ms.
  static void pause(const blade::sdk::Call &call, std::chrono::milliseconds total) {
    const auto until = std::chrono::steady_clock::now() + total;
    while (std::chrono::steady_clock::now() < until && !call.cancelled())
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          std::chrono::milliseconds(10), until - std::chrono::steady_clock::now()));
  }

  blade::sdk::Host host_;
};

}  // namespace

BLADE_PLUGIN(FillPlugin, "fill", "1.0.0", kSpec)
