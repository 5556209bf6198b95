// file add | append | chmod | delete | move. Each create records in its
// restore record exactly what it changed (inodes, sizes, modes, backup paths
// under the plugin's state dir), and destroy undoes only that: it never
// removes or overwrites something that appeared at the path since.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../common/handles.hpp"
#include "fault.hpp"
#include "file_backup.hpp"

namespace blade::os {
namespace {

using nlohmann::json;

std::string filepath_flag(const Request &req) {
  std::string path = req.flag_or("filepath", "");
  if (path.empty() || path[0] != '/')
    throw sdk::InvalidArgument("filepath: must be an absolute path, got '" + path + "'");
  while (path.size() > 1 && path.back() == '/')
    path.pop_back();
  if (path == "/") throw sdk::InvalidArgument("filepath: refusing to act on /");
  return path;
}

struct stat existing(const std::string &path, const std::string &flag = "filepath") {
  auto st = fs::lstat_at(path);
  if (!st) throw sdk::InvalidArgument(flag + ": " + path + " does not exist");
  return *st;
}

// The content flag as bytes: base64-decoded or unescaped as asked.
std::string content_flag(const Request &req, bool allow_escape) {
  std::string content = req.flag_or("content", "");
  if (req.flag_bool("enable-base64")) {
    auto decoded = fs::base64_decode(content);
    if (!decoded) throw sdk::InvalidArgument("content: not valid base64");
    return *decoded;
  }
  if (allow_escape && req.flag_bool("escape")) return fs::unescape(content);
  return content;
}

// What was moved aside, and how to put it back.
json stash(const std::string &path, const std::string &backup) {
  struct stat st = existing(path);
  fs::make_private_dir(fs::parent_of(backup));
  fs::move_path(path, backup);
  return {{"path", path},     {"backup", backup}, {"mode", st.st_mode & 07777},
          {"uid", st.st_uid}, {"gid", st.st_gid}, {"directory", S_ISDIR(st.st_mode)}};
}

// Puts a stash back; done already (no backup) is success, something new at
// the path is refused so it is never overwritten.
void unstash(const json &rec) {
  const std::string path = rec.at("path");
  const std::string backup = rec.at("backup");
  auto saved = fs::lstat_at(backup);
  if (!saved) return;
  if (fs::lstat_at(path))
    throw sdk::FailedPrecondition("filepath: " + path + " exists again; the original is kept at " +
                                  backup);
  fs::move_path(backup, path);
  if (::lchown(path.c_str(), rec.at("uid").get<uid_t>(), rec.at("gid").get<gid_t>()) != 0)
    throw sdk::FailedPrecondition(fs::errno_text("cannot chown", path));
  if (!S_ISLNK(saved->st_mode) && ::chmod(path.c_str(), rec.at("mode").get<mode_t>()) != 0)
    throw sdk::FailedPrecondition(fs::errno_text("cannot chmod", path));
}

std::vector<std::string> dirs_of(const json &rec) {
  return rec.value("created_dirs", std::vector<std::string>{});
}

// ---------------------------------------------------------------- add
class FileAdd : public Fault {
 public:
  Outcome create(const Request &req, Call &) override {
    const std::string path = filepath_flag(req);
    const bool directory = req.flag_bool("directory");
    const std::string content = content_flag(req, false);
    if (fs::lstat_at(path)) throw sdk::AlreadyExists("filepath: " + path + " exists");
    const std::string parent = fs::parent_of(path);
    const bool auto_dirs = req.flag_bool("auto-create-dir");
    if (!fs::lstat_at(parent) && !auto_dirs)
      throw sdk::InvalidArgument("filepath: directory " + parent +
                                 " does not exist (auto-create-dir creates it)");
    std::vector<std::string> created =
        auto_dirs ? fs::make_dirs(parent) : std::vector<std::string>{};
    struct stat st {};
    if (directory) {
      if (::mkdir(path.c_str(), 0755) != 0 || ::lstat(path.c_str(), &st) != 0) {
        int saved = errno;
        fs::remove_dirs_if_empty(created);
        errno = saved;
        throw sdk::FailedPrecondition(fs::errno_text("cannot create directory", path));
      }
    } else {
      plugins::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
      if (!fd) {
        int saved = errno;
        fs::remove_dirs_if_empty(created);
        errno = saved;
        if (errno == EEXIST) throw sdk::AlreadyExists("filepath: " + path + " exists");
        throw sdk::FailedPrecondition(fs::errno_text("cannot create", path));
      }
      try {
        fs::write_all(fd.get(), content, path);
        if (::fstat(fd.get(), &st) != 0)
          throw sdk::FailedPrecondition(fs::errno_text("cannot stat", path));
      } catch (...) {
        fd.reset();
        ::unlink(path.c_str());
        fs::remove_dirs_if_empty(created);
        throw;
      }
    }
    json restore = {{"path", path},
                    {"directory", directory},
                    {"dev", st.st_dev},
                    {"ino", st.st_ino},
                    {"created_dirs", created}};
    json result = {{"path", path},
                   {"directory", directory},
                   {"bytes", content.size()},
                   {"created_dirs", created}};
    return {result.dump(), restore.dump()};
  }

  void destroy(const Request &req, Call &) override {
    json rec = fs::parse_restore(req);
    if (!rec.contains("path")) return;  // create never finished
    const std::string path = rec["path"];
    if (auto st = fs::recorded_inode(path, rec)) {
      // A directory someone filled since keeps its contents: rmdir refuses.
      int rc = S_ISDIR(st->st_mode) ? ::rmdir(path.c_str()) : ::unlink(path.c_str());
      if (rc != 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST)
        throw sdk::FailedPrecondition(fs::errno_text("cannot remove", path));
    }
    fs::remove_dirs_if_empty(dirs_of(rec));
  }

  std::string plan(const Request &req, Call &) override {
    const std::string path = filepath_flag(req);
    const std::string content = content_flag(req, false);
    return json{{"add", path},
                {"directory", req.flag_bool("directory")},
                {"bytes", content.size()},
                {"exists", fs::lstat_at(path).has_value()}}
        .dump();
  }
};

// ---------------------------------------------------------------- append
// Appends the rest of the `count` at every `interval` until done or stopped.
class Appender {
 public:
  Appender(std::string path, std::string bytes, int remaining, int interval_s,
           unsigned long long dev, unsigned long long ino)
      : thread_([=, this] { run(path, bytes, remaining, interval_s, dev, ino); }) {}
  Appender(const Appender &) = delete;
  Appender &operator=(const Appender &) = delete;
  ~Appender() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void run(const std::string &path, const std::string &bytes, int remaining, int interval_s,
           unsigned long long dev, unsigned long long ino) {
    std::unique_lock<std::mutex> lock(mu_);
    for (; remaining > 0; --remaining) {
      if (cv_.wait_for(lock, std::chrono::seconds(interval_s), [this] { return stop_; })) return;
      // Stop when the file was replaced: appending to a newcomer would
      // change what destroy cannot take back.
      if (!append_once(path, bytes, dev, ino)) return;
    }
  }

 public:
  static bool append_once(const std::string &path, const std::string &bytes, unsigned long long dev,
                          unsigned long long ino) {
    plugins::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return false;
    struct stat st {};
    return ::fstat(fd.get(), &st) == 0 && fs::same_inode(st, dev, ino) &&
           ::write(fd.get(), bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: started once the members it uses exist
};

class FileAppend : public Fault {
 public:
  Outcome create(const Request &req, Call &) override {
    const std::string path = filepath_flag(req);
    const std::string bytes = content_flag(req, true);
    const auto count = req.flag_int("count", 1);
    const auto interval = req.flag_int("interval", 1);
    if (count < 1) throw sdk::InvalidArgument("count: must be at least 1");
    if (interval < 1) throw sdk::InvalidArgument("interval: must be at least 1");
    struct stat st = existing(path);
    if (!S_ISREG(st.st_mode))
      throw sdk::InvalidArgument("filepath: " + path + " is not a regular file");
    const auto dev = static_cast<unsigned long long>(st.st_dev);
    const auto ino = static_cast<unsigned long long>(st.st_ino);
    if (!Appender::append_once(path, bytes, dev, ino))
      throw sdk::FailedPrecondition(fs::errno_text("cannot append to", path));
    const std::string uid(req.uid());
    appenders_.erase(uid);
    if (count > 1)
      appenders_[uid] = std::make_unique<Appender>(path, bytes, static_cast<int>(count - 1),
                                                   static_cast<int>(interval), dev, ino);
    json restore = {{"path", path}, {"size", st.st_size}, {"dev", dev}, {"ino", ino}};
    json result = {{"path", path},
                   {"original_size", st.st_size},
                   {"bytes", bytes.size()},
                   {"count", count},
                   {"interval", interval}};
    return {result.dump(), restore.dump()};
  }

  void destroy(const Request &req, Call &) override {
    appenders_.erase(std::string(req.uid()));  // joins the thread: no append after this
    json rec = fs::parse_restore(req);
    if (!rec.contains("path")) return;
    const std::string path = rec["path"];
    const auto size = rec["size"].get<off_t>();
    auto st = fs::recorded_inode(path, rec);
    if (!st) return;                 // gone or replaced: nothing of ours to take back
    if (st->st_size < size) return;  // someone truncated it; never grow a file
    if (st->st_size > size && ::truncate(path.c_str(), size) != 0)
      throw sdk::FailedPrecondition(fs::errno_text("cannot truncate", path));
  }

  std::string plan(const Request &req, Call &) override {
    const std::string path = filepath_flag(req);
    const std::string bytes = content_flag(req, true);
    struct stat st = existing(path);
    return json{{"append_to", path},
                {"size", st.st_size},
                {"bytes", bytes.size()},
                {"count", req.flag_int("count", 1)},
                {"interval", req.flag_int("interval", 1)}}
        .dump();
  }

 private:
  std::map<std::string, std::unique_ptr<Appender>> appenders_;
};

// ---------------------------------------------------------------- chmod
mode_t mark_flag(const Request &req) {
  const std::string mark = req.flag_or("mark", "");
  if (mark.empty() || mark.size() > 4 || mark.find_first_not_of("01234567") != std::string::npos)
    throw sdk::InvalidArgument("mark: must be 1 to 4 octal digits, e.g. 644, got '" + mark + "'");
  return static_cast<mode_t>(std::stoul(mark, nullptr, 8));
}

class FileChmod : public Fault {
 public:
  Outcome create(const Request &req, Call &) override {
    const std::string path = filepath_flag(req);
    const mode_t mode = mark_flag(req);
    struct stat st = existing(path);
    if (S_ISLNK(st.st_mode))
      throw sdk::InvalidArgument("filepath: " + path + " is a symbolic link");
    if (::chmod(path.c_str(), mode) != 0)
      throw sdk::FailedPrecondition(fs::errno_text("cannot chmod", path));
    json restore = {
        {"path", path}, {"mode", st.st_mode & 07777}, {"dev", st.st_dev}, {"ino", st.st_ino}};
    json result = {{"path", path}, {"old_mode", st.st_mode & 07777}, {"new_mode", mode}};
    return {result.dump(), restore.dump()};
  }

  void destroy(const Request &req, Call &) override {
    json rec = fs::parse_restore(req);
    if (!rec.contains("path")) return;
    const std::string path = rec["path"];
    if (!fs::recorded_inode(path, rec)) return;
    if (::chmod(path.c_str(), rec["mode"].get<mode_t>()) != 0)
      throw sdk::FailedPrecondition(fs::errno_text("cannot chmod", path));
  }

  std::string plan(const Request &req, Call &) override {
    const std::string path = filepath_flag(req);
    const mode_t mode = mark_flag(req);
    struct stat st = existing(path);
    return json{{"chmod", path}, {"old_mode", st.st_mode & 07777}, {"new_mode", mode}}.dump();
  }
};

// ---------------------------------------------------------------- delete
class FileDelete : public Fault {
 public:
  explicit FileDelete(const Host &host) : host_(host) {}

  Outcome create(const Request &req, Call &) override {
    const std::string path = filepath_flag(req);
    check(req, path);
    const std::string dir = fs::backup_dir(host_, req.uid());
    json rec = stash(path, dir + "/deleted");
    json result = {{"deleted", path}, {"backup", rec["backup"]}};
    return {result.dump(), json{{"deleted", rec}, {"backup_dir", dir}}.dump()};
  }

  void destroy(const Request &req, Call &) override {
    json rec = fs::parse_restore(req);
    if (!rec.contains("deleted")) return;
    unstash(rec["deleted"]);
    fs::remove_tree(rec["backup_dir"]);
  }

  std::string plan(const Request &req, Call &) override {
    const std::string path = filepath_flag(req);
    check(req, path);
    return json{{"delete", path}, {"backup_under", fs::backup_dir(host_, req.uid())}}.dump();
  }

 private:
  void check(const Request &req, const std::string &path) {
    struct stat st = existing(path);
    if (S_ISDIR(st.st_mode) && !req.flag_bool("force"))
      throw sdk::InvalidArgument("filepath: " + path + " is a directory (force deletes it)");
    const std::string state = host_.state_dir();
    if (!state.empty() && (state == path || state.rfind(path + "/", 0) == 0))
      throw sdk::InvalidArgument("filepath: " + path + " holds the daemon's state");
  }

  Host host_;
};

// ---------------------------------------------------------------- move
class FileMove : public Fault {
 public:
  explicit FileMove(const Host &host) : host_(host) {}

  Outcome create(const Request &req, Call &) override {
    const std::string path = filepath_flag(req);
    Plan p = resolve(req, path);
    const std::string dir = fs::backup_dir(host_, req.uid());
    json restore = {{"path", path}, {"destination", p.destination}, {"backup_dir", dir}};
    std::vector<std::string> created;
    if (p.missing_parent) created = fs::make_dirs(fs::parent_of(p.destination));
    restore["created_dirs"] = created;
    try {
      if (p.replaces) restore["replaced"] = stash(p.destination, dir + "/replaced");
      fs::move_path(path, p.destination);
      struct stat moved = existing(p.destination, "target");
      restore["dev"] = moved.st_dev;
      restore["ino"] = moved.st_ino;
    } catch (...) {
      if (restore.contains("replaced")) unstash(restore["replaced"]);
      fs::remove_dirs_if_empty(created);
      fs::remove_tree(dir);
      throw;
    }
    json result = {{"moved", path},
                   {"to", p.destination},
                   {"replaced", p.replaces},
                   {"created_dirs", created}};
    return {result.dump(), restore.dump()};
  }

  void destroy(const Request &req, Call &) override {
    json rec = fs::parse_restore(req);
    if (!rec.contains("path")) return;
    const std::string path = rec["path"];
    const std::string dest = rec["destination"];
    // Only our own file goes back (same inode as after the move); something
    // new at the original path is never overwritten.
    if (fs::recorded_inode(dest, rec)) {
      if (fs::lstat_at(path))
        throw sdk::FailedPrecondition("filepath: " + path +
                                      " exists again; the moved file is still at " + dest);
      fs::move_path(dest, path);
    }
    if (rec.contains("replaced")) unstash(rec["replaced"]);
    fs::remove_dirs_if_empty(dirs_of(rec));
    fs::remove_tree(rec["backup_dir"]);
  }

  std::string plan(const Request &req, Call &) override {
    const std::string path = filepath_flag(req);
    Plan p = resolve(req, path);
    return json{{"move", path},
                {"to", p.destination},
                {"replaces", p.replaces},
                {"creates_dirs", p.missing_parent}}
        .dump();
  }

 private:
  struct Plan {
    std::string destination;
    bool replaces = false;
    bool missing_parent = false;
  };

  Plan resolve(const Request &req, const std::string &path) {
    struct stat src = existing(path);
    std::string target = req.flag_or("target", "");
    if (target.empty() || target[0] != '/')
      throw sdk::InvalidArgument("target: must be an absolute path, got '" + target + "'");
    const bool as_dir = target.back() == '/';
    while (target.size() > 1 && target.back() == '/')
      target.pop_back();
    Plan p;
    auto t = fs::lstat_at(target);
    if ((t && S_ISDIR(t->st_mode)) || (!t && as_dir)) {
      p.destination = (target == "/" ? "" : target) + "/" + fs::base_of(path);
    } else {
      p.destination = target;
    }
    if (p.destination == path) throw sdk::InvalidArgument("target: is where the file already is");
    if (S_ISDIR(src.st_mode) && p.destination.rfind(path + "/", 0) == 0)
      throw sdk::InvalidArgument("target: " + p.destination + " is inside " + path);
    if (fs::lstat_at(p.destination)) {
      if (!req.flag_bool("force"))
        throw sdk::AlreadyExists("target: " + p.destination + " exists (force replaces it)");
      p.replaces = true;
    }
    const std::string parent = fs::parent_of(p.destination);
    if (!fs::lstat_at(parent)) {
      if (!req.flag_bool("auto-create-dir"))
        throw sdk::InvalidArgument("target: directory " + parent +
                                   " does not exist (auto-create-dir creates it)");
      p.missing_parent = true;
    }
    return p;
  }

  Host host_;
};

}  // namespace

void register_file_faults(FaultTable &table, const Host &host) {
  table[{"file", "add"}] = std::make_unique<FileAdd>();
  table[{"file", "append"}] = std::make_unique<FileAppend>();
  table[{"file", "chmod"}] = std::make_unique<FileChmod>();
  table[{"file", "delete"}] = std::make_unique<FileDelete>(host);
  table[{"file", "move"}] = std::make_unique<FileMove>(host);
}

}  // namespace blade::os
