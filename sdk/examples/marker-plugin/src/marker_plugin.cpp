// An example Blade plugin: `example marker` creates a marker file and
// destroy removes it. Small on purpose, but it shows what every plugin needs:
// a spec the host validates flags against, a restore record written ahead of
// each step so destroy works after a crash at any point, idempotent destroy,
// and a dry run.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <blade/plugin.hpp>
#include <nlohmann/json.hpp>

namespace {

// The spec the plugin advertises (ChaosBlade format plus Blade's `type`).
// The host checks every flag against it, so create can trust `path` is an
// absolute path and that no unknown flag reaches it.
constexpr const char *kSpec = R"yaml(
version: v1
kind: plugin
items:
- target: example
  shortDesc: Example experiments from the Blade SDK
  longDesc: A plugin third parties can copy; it touches nothing but the file it is told to create.
  scope: host
  actions:
  - action: marker
    aliases: [mk]
    shortDesc: Create a marker file until the experiment is destroyed
    longDesc: Creates the file (it must not exist yet) and removes it on destroy.
    flags:
    - name: path
      desc: absolute path of the marker file to create
      required: true
      type: path
    - name: content
      desc: text to write into the file
      default: "blade example marker\n"
    example: |
      blade create example marker --path /tmp/blade-marker --content hello
)yaml";

std::string errno_text(const std::string &what, const std::string &path) {
  return what + " " + path + ": " + std::strerror(errno);
}

// Named after the experiment, so destroy finds it from the uid alone.
std::string temp_name(const std::string &path, std::string_view uid) {
  return path + ".blade-" + std::string(uid);
}

class MarkerPlugin {
 public:
  explicit MarkerPlugin(blade::sdk::Host host) : host_(host) {}

  // A crash may come between any two steps, so the restore record is saved
  // ahead of each (call.save_restore) and destroy undoes any prefix. The
  // file is made under a name of its own and then linked into place: link()
  // never replaces an existing file, so a crash can never cost the user a
  // file that was at `path` before.
  blade::sdk::Outcome create(const blade::sdk::Request &req, blade::sdk::Call &call) {
    const std::string path = req.flag_or("path", "");
    const std::string content = req.flag_or("content", "");
    const std::string temp = temp_name(path, req.uid());

    nlohmann::json restore = {{"path", path}, {"temp", temp}};
    call.save_restore(restore.dump());  // step 1 may leave `temp`
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      if (errno == ENOENT) throw blade::sdk::InvalidArgument("path: directory of " + path + " does not exist");
      throw blade::sdk::FailedPrecondition(errno_text("cannot create", temp));
    }
    bool written = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
    written = written && ::fsync(fd) == 0;
    struct stat st {};
    ::fstat(fd, &st);
    ::close(fd);
    if (!written) {
      ::unlink(temp.c_str());  // leave nothing behind on failure
      throw blade::sdk::FailedPrecondition(errno_text("cannot write", temp));
    }

    // Destroy removes `path` only if it is still the file we made, so a file
    // someone recreated at that path in the meantime is left alone.
    restore["dev"] = st.st_dev;
    restore["ino"] = st.st_ino;
    call.save_restore(restore.dump());  // step 2 may leave `path`
    if (::link(temp.c_str(), path.c_str()) != 0) {
      int err = errno;
      ::unlink(temp.c_str());
      if (err == EEXIST) throw blade::sdk::AlreadyExists("path: " + path + " already exists");
      errno = err;
      throw blade::sdk::FailedPrecondition(errno_text("cannot create", path));
    }
    ::unlink(temp.c_str());
    host_.info("created marker " + path);
    nlohmann::json result = {{"path", path}, {"bytes", content.size()}};
    return {result.dump(), restore.dump()};
  }

  // Works from any record create saved, or none (a crash before the first
  // save: then nothing was made, or only the uid-named temp file).
  void destroy(const blade::sdk::Request &req, blade::sdk::Call &) {
    auto restore = nlohmann::json::parse(req.restore_json().value_or("{}"));
    const std::string path = restore.value("path", req.flag_or("path", ""));
    ::unlink(restore.value("temp", temp_name(path, req.uid())).c_str());
    // Without the inode, the link step was never reached: `path` is not ours.
    if (!restore.contains("ino")) return;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return;  // already gone: destroy is idempotent
    if (st.st_ino != restore["ino"].get<ino_t>() || st.st_dev != restore["dev"].get<dev_t>()) {
      host_.warn("marker " + path + " was replaced by another file; leaving it");
      return;
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      throw blade::sdk::FailedPrecondition(errno_text("cannot remove", path));
    }
    host_.info("removed marker " + path);
  }

  std::string dry_run(const blade::sdk::Request &req, blade::sdk::Call &) {
    const std::string path = req.flag_or("path", "");
    struct stat st {};
    bool exists = ::lstat(path.c_str(), &st) == 0;
    nlohmann::json plan = {{"create_file", path},
                           {"bytes", req.flag_or("content", "").size()},
                           {"would_fail", exists ? "file exists" : ""}};
    return plan.dump();
  }

 private:
  blade::sdk::Host host_;
};

}  // namespace

BLADE_PLUGIN(MarkerPlugin, "example", "1.0.0", kSpec)
