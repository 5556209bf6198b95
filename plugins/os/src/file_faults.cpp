// file add | append | chmod | delete | move. Before each irreversible step a
// create saves a write-ahead record naming exactly what it is about to
// change (inodes, sizes, modes, times, backup paths under the plugin's state
// dir), and destroy undoes only that: it accepts a record whose step never
// happened, never removes or overwrites something that appeared at the path
// since, and never touches a path another experiment holds. Each path is
// claimed (experiment_state.hpp), so two faults never stack on one file.
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <blade/failpoint.hpp>
#include <nlohmann/json.hpp>

#include "../../common/durable_file.hpp"
#include "../../common/handles.hpp"
#include "../../common/path_guard.hpp"
#include "append_content.hpp"
#include "experiment_state.hpp"
#include "fault.hpp"
#include "file_backup.hpp"
#include "file_fdleak.hpp"

namespace blade::os {
namespace {

using nlohmann::json;

std::string filepath_flag(const Request &req) {
  std::string path = req.flag_or("filepath", "");
  if (path.empty() || path[0] != '/')
    throw sdk::InvalidArgument("filepath: must be an absolute path, got '" + path +
                               "' (the blade CLI resolves a relative one against its working "
                               "directory; a request to bladed has none)");
  while (path.size() > 1 && path.back() == '/')
    path.pop_back();
  if (path == "/") throw sdk::InvalidArgument("filepath: refusing to act on /");
  return path;
}

// /proc, /sys and bladed's own files are never a file fault's target.
void refuse_protected(const Host &host, std::string_view flag, const std::string &path) {
  plugins::refuse_protected(flag, path, host.protected_paths(), true);
}

struct stat existing(const std::string &path, const std::string &flag = "filepath") {
  auto st = fs::lstat_at(path);
  if (!st) throw sdk::InvalidArgument(flag + ": " + path + " does not exist");
  return *st;
}

// The content flag as bytes: base64-decoded when asked.
std::string content_flag(const Request &req) {
  std::string content = req.flag_or("content", "");
  if (req.flag_bool("enable-base64")) {
    auto decoded = fs::base64_decode(content);
    if (!decoded) throw sdk::InvalidArgument("content: not valid base64");
    return *decoded;
  }
  return content;
}

// What file add writes: ChaosBlade writes a content with `echo`, so a file
// it adds ends with a newline (an empty content is a `touch`: no bytes). A
// migrated script that checks the file must find the same bytes here.
std::string added_bytes(const Request &req) {
  std::string bytes = content_flag(req);
  if (!bytes.empty()) bytes += '\n';
  return bytes;
}

// What moving `path` aside to `backup` will need to put it back.
json stash_record(const std::string &path, const std::string &backup) {
  struct stat st = existing(path);
  return {{"path", path},     {"backup", backup}, {"mode", st.st_mode & 07777},
          {"uid", st.st_uid}, {"gid", st.st_gid}, {"directory", S_ISDIR(st.st_mode)}};
}

// Puts a stash back; done already (or never done: no backup) is success,
// something new at the path is refused so it is never overwritten.
void unstash(const json &rec) {
  const std::string path = rec.at("path");
  const std::string backup = rec.at("backup");
  auto saved = fs::lstat_at(backup);
  if (!saved) return;
  if (fs::lstat_at(path))
    throw sdk::FailedPrecondition("filepath: " + path + " exists again; the original is kept at " +
                                  backup);
  fs::move_path(backup, path);
  if (rec.contains("uid") &&
      ::lchown(path.c_str(), rec.at("uid").get<uid_t>(), rec.at("gid").get<gid_t>()) != 0)
    throw sdk::FailedPrecondition(fs::errno_text("cannot chown", path));
  if (rec.contains("mode") && !S_ISLNK(saved->st_mode) &&
      ::chmod(path.c_str(), rec.at("mode").get<mode_t>()) != 0)
    throw sdk::FailedPrecondition(fs::errno_text("cannot chmod", path));
}

std::vector<std::string> dirs_of(const json &rec) {
  return rec.value("created_dirs", std::vector<std::string>{});
}

// A file fault: its record is saved ahead of each step, and a create that
// fails after the first save undoes what it did exactly as destroy would.
class FileFault : public Fault {
 public:
  explicit FileFault(const Host &host) : host_(host), state_(host) {}

  void destroy(const Request &req, Call &) override {
    before_destroy(req);
    undo(state_.record(req), req.uid());
    state_.finish(req.uid());
  }

 protected:
  virtual void undo(const json &rec, std::string_view uid) = 0;
  virtual void before_destroy(const Request &) {}

  // Runs the steps of a create; on failure undoes them (the record names
  // every step so far) and lets the failure through.
  template <class Steps>
  void guarded(std::string_view uid, const json &rec, Steps steps) {
    try {
      steps();
    } catch (...) {
      state_.roll_back(uid, "create", [&] { undo(rec, uid); });
      throw;
    }
  }

  Host host_;
  ExperimentState state_;  // only where things live: no memory of its own
};

// ---------------------------------------------------------------- add
// The new file (or dir) is made complete under a temp name named for the
// uid, its inode is recorded, and only then is it renamed into place
// (never over anything), so destroy knows it by inode from the first step.
class FileAdd : public FileFault {
 public:
  using FileFault::FileFault;

  Outcome create(const Request &req, Call &call) override {
    const std::string path = check(req);
    const std::string uid(req.uid());
    const bool directory = req.flag_bool("directory");
    const std::string content = added_bytes(req);
    const std::string parent = fs::parent_of(path);
    const bool auto_dirs = req.flag_bool("auto-create-dir");
    const std::string temp = plugins::temp_path_for(path, uid);
    json rec = {{"fault", "file add"},
                {"path", path},
                {"directory", directory},
                {"temp", temp},
                {"created_dirs", auto_dirs ? fs::missing_dirs(parent) : std::vector<std::string>{}}};
    state_.checkpoint(call, uid, rec);
    guarded(uid, rec, [&] {
      state_.claim_path("filepath", path, uid);
      if (auto_dirs) fs::make_dirs(parent);
      struct stat st = make_temp(temp, directory, content);
      rec["dev"] = st.st_dev;
      rec["ino"] = st.st_ino;
      state_.checkpoint(call, uid, rec);
      BLADE_FAILPOINT("os.file.add.before_create");
      // RENAME_NOREPLACE: never over something that appeared meanwhile.
      if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
        if (errno == EEXIST) throw sdk::AlreadyExists("filepath: " + path + " exists");
        throw sdk::FailedPrecondition(fs::errno_text("cannot create", path));
      }
      plugins::sync_dir(parent);
      BLADE_FAILPOINT("os.file.add.after_create");
    });
    json result = {{"path", path},
                   {"directory", directory},
                   {"bytes", content.size()},
                   {"created_dirs", rec["created_dirs"]}};
    return {result.dump(), rec.dump()};
  }

  std::string plan(const Request &req, Call &) override {
    const std::string path = check(req);
    const std::string content = added_bytes(req);
    return json{{"add", path},
                {"directory", req.flag_bool("directory")},
                {"bytes", content.size()},
                {"exists", false}}
        .dump();
  }

 protected:
  void undo(const json &rec, std::string_view uid) override {
    if (!rec.contains("path")) return;
    const std::string path = rec["path"];
    if (state_.path_held_by_other(path, uid)) return;  // our create never got this far
    fs::remove_tree(rec.value("temp", plugins::temp_path_for(path, uid)));
    BLADE_FAILPOINT("os.file.add.destroy.before_remove");
    if (auto st = fs::recorded_inode(path, rec)) {
      // A directory someone filled since keeps its contents: rmdir refuses.
      int rc = S_ISDIR(st->st_mode) ? ::rmdir(path.c_str()) : ::unlink(path.c_str());
      if (rc != 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST)
        throw sdk::FailedPrecondition(fs::errno_text("cannot remove", path));
      plugins::sync_dir(fs::parent_of(path));
    }
    BLADE_FAILPOINT("os.file.add.destroy.after_remove");
    fs::remove_dirs_if_empty(dirs_of(rec));
  }

 private:
  std::string check(const Request &req) {
    const std::string path = filepath_flag(req);
    refuse_protected(host_, "filepath", path);
    if (fs::lstat_at(path)) throw sdk::AlreadyExists("filepath: " + path + " exists");
    const std::string parent = fs::parent_of(path);
    if (!fs::lstat_at(parent) && !req.flag_bool("auto-create-dir"))
      throw sdk::InvalidArgument("filepath: directory " + parent +
                                 " does not exist (auto-create-dir creates it)");
    state_.refuse_if_path_held("filepath", path, req.uid());
    return path;
  }

  static struct stat make_temp(const std::string &temp, bool directory,
                               const std::string &content) {
    fs::remove_tree(temp);  // a leftover of a crash of this very experiment
    struct stat st {};
    if (directory) {
      if (::mkdir(temp.c_str(), 0755) != 0 || ::lstat(temp.c_str(), &st) != 0)
        throw sdk::FailedPrecondition(fs::errno_text("cannot create directory", temp));
      return st;
    }
    plugins::UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) throw sdk::FailedPrecondition(fs::errno_text("cannot create", temp));
    plugins::write_all_fd(fd.get(), content, temp);
    if (::fsync(fd.get()) != 0 || ::fstat(fd.get(), &st) != 0)
      throw sdk::FailedPrecondition(fs::errno_text("cannot sync", temp));
    return st;
  }
};

// ---------------------------------------------------------------- append
// At every `interval` seconds, `count` more lines, until stopped.
class Appender {
 public:
  Appender(std::string path, append::Content content, std::int64_t count, int interval_s,
           unsigned long long dev, unsigned long long ino)
      : thread_([=, this] { run(path, content, count, interval_s, dev, ino); }) {}
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
  void run(const std::string &path, const append::Content &content, std::int64_t count,
           int interval_s, unsigned long long dev, unsigned long long ino) {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      if (cv_.wait_for(lock, std::chrono::seconds(interval_s), [this] { return stop_; })) return;
      // Stop when the file was replaced: appending to a newcomer would
      // change what destroy cannot take back.
      if (!append_once(path, content.lines(count), dev, ino)) return;
    }
  }

 public:
  // One write(2) per tick: the tick's lines land together, never
  // interleaved with another writer's.
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

// A tick's lines are built in memory: this bounds them.
constexpr std::size_t kMaxTickBytes = 64 << 20;

// ChaosBlade's meaning: `count` lines (content and a newline, as echo
// writes them) at once, and with `interval` the same again every interval
// seconds until destroyed. Appending never rewrites the bytes already there
// (O_APPEND). Destroy goes further than ChaosBlade, which leaves the lines:
// it cuts the file back with one truncate(2), which a crash cannot leave
// half done, keeping the inode so a logger holding the file open stays
// attached to it; then the times the file had before the fault are put back.
class FileAppend : public FileFault {
 public:
  using FileFault::FileFault;

  Outcome create(const Request &req, Call &call) override {
    const std::string path = filepath_flag(req);
    const Args a = args(req);
    struct stat st = check(req, path);
    const std::string uid(req.uid());
    const auto dev = static_cast<unsigned long long>(st.st_dev);
    const auto ino = static_cast<unsigned long long>(st.st_ino);
    json rec = {{"fault", "file append"},         {"path", path},
                {"size", st.st_size},             {"dev", dev},
                {"ino", ino},                     {"atime", fs::time_json(st.st_atim)},
                {"mtime", fs::time_json(st.st_mtim)}};
    state_.checkpoint(call, uid, rec);
    const std::string first = a.content.lines(a.count);
    guarded(uid, rec, [&] {
      state_.claim_path("filepath", path, uid);
      BLADE_FAILPOINT("os.file.append.before_write");
      if (!Appender::append_once(path, first, dev, ino))
        throw sdk::FailedPrecondition(fs::errno_text("cannot append to", path));
      BLADE_FAILPOINT("os.file.append.after_write");
    });
    appenders_.erase(uid);
    if (a.interval > 0)
      appenders_[uid] = std::make_unique<Appender>(path, a.content, a.count,
                                                   static_cast<int>(a.interval), dev, ino);
    json result = summary(a);
    result["path"] = path;
    result["original_size"] = st.st_size;
    result["bytes"] = first.size();
    return {result.dump(), rec.dump()};
  }

  std::string plan(const Request &req, Call &) override {
    const std::string path = filepath_flag(req);
    const Args a = args(req);
    struct stat st = check(req, path);
    json plan = summary(a);
    plan["append_to"] = path;
    plan["size"] = st.st_size;
    return plan.dump();
  }

 protected:
  // No append after this: the thread is joined before anything is undone.
  void before_destroy(const Request &req) override { appenders_.erase(std::string(req.uid())); }

  void undo(const json &rec, std::string_view uid) override {
    if (!rec.contains("path")) return;
    const std::string path = rec["path"];
    if (state_.path_held_by_other(path, uid)) return;
    const auto size = rec["size"].get<off_t>();
    auto st = fs::recorded_inode(path, rec);
    if (!st) return;                                 // gone or replaced: nothing of ours
    if (st->st_size <= size) return;                 // never appended, or cut back already
    BLADE_FAILPOINT("os.file.append.destroy.before_truncate");
    plugins::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd || ::ftruncate(fd.get(), size) != 0 || ::fsync(fd.get()) != 0)
      throw sdk::FailedPrecondition(fs::errno_text("cannot truncate", path));
    auto atime = fs::json_time(rec.value("atime", json()));
    auto mtime = fs::json_time(rec.value("mtime", json()));
    if (mtime) {
      const struct timespec times[2] = {atime ? *atime : timespec{0, UTIME_OMIT}, *mtime};
      if (::futimens(fd.get(), times) != 0)
        throw sdk::FailedPrecondition(fs::errno_text("cannot set times of", path));
    }
    BLADE_FAILPOINT("os.file.append.destroy.after_truncate");
  }

 private:
  struct Args {
    append::Content content;
    std::int64_t count = 1;
    std::int64_t interval = 0;  // 0: append once (ChaosBlade's default)
  };

  static Args args(const Request &req) {
    Args a{append::Content::parse(content_flag(req), req.flag_bool("escape")),
           req.flag_int("count", 1), req.flag_int("interval", 0)};
    if (a.count < 1) throw sdk::InvalidArgument("count: must be at least 1");
    if (a.interval < 0) throw sdk::InvalidArgument("interval: must be at least 1");
    if (static_cast<std::uint64_t>(a.count) > kMaxTickBytes / a.content.template_size())
      throw sdk::InvalidArgument("count: " + std::to_string(a.count) + " lines of " +
                                 std::to_string(a.content.template_size()) +
                                 " bytes is more than 64 MiB at once");
    return a;
  }

  static json summary(const Args &a) {
    return {{"lines_per_append", a.count},
            {"interval", a.interval > 0 ? json(a.interval) : json()},
            {"repeats_until_destroyed", a.interval > 0},
            {"note",
             "destroy cuts the file back to its size before the fault (ChaosBlade leaves the "
             "appended lines)"}};
  }

  struct stat check(const Request &req, const std::string &path) {
    refuse_protected(host_, "filepath", path);
    struct stat st = existing(path);
    if (!S_ISREG(st.st_mode))
      throw sdk::InvalidArgument("filepath: " + path + " is not a regular file");
    state_.refuse_if_path_held("filepath", path, req.uid());
    return st;
  }

  std::map<std::string, std::unique_ptr<Appender>> appenders_;
};

// ---------------------------------------------------------------- chmod
mode_t mark_flag(const Request &req) {
  // Exactly three octal digits, as ChaosBlade checks it: no set-id or
  // sticky bits, no symbolic modes.
  const std::string mark = req.flag_or("mark", "");
  if (mark.size() != 3 || mark.find_first_not_of("01234567") != std::string::npos)
    throw sdk::InvalidArgument("mark: must be exactly 3 octal digits, e.g. 644, got '" + mark +
                               "'");
  return static_cast<mode_t>(std::stoul(mark, nullptr, 8));
}

// chmod(2) changes the inode's mode in one step; there are no bytes to
// rewrite, so create and destroy are each that one call.
class FileChmod : public FileFault {
 public:
  using FileFault::FileFault;

  Outcome create(const Request &req, Call &call) override {
    const std::string path = filepath_flag(req);
    const mode_t mode = mark_flag(req);
    struct stat st = check(req, path);
    const std::string uid(req.uid());
    json rec = {{"fault", "file chmod"},
                {"path", path},
                {"mode", st.st_mode & 07777},
                {"dev", st.st_dev},
                {"ino", st.st_ino}};
    state_.checkpoint(call, uid, rec);
    guarded(uid, rec, [&] {
      state_.claim_path("filepath", path, uid);
      BLADE_FAILPOINT("os.file.chmod.before_chmod");
      if (::chmod(path.c_str(), mode) != 0)
        throw sdk::FailedPrecondition(fs::errno_text("cannot chmod", path));
      BLADE_FAILPOINT("os.file.chmod.after_chmod");
    });
    json result = {{"path", path}, {"old_mode", st.st_mode & 07777}, {"new_mode", mode}};
    return {result.dump(), rec.dump()};
  }

  std::string plan(const Request &req, Call &) override {
    const std::string path = filepath_flag(req);
    const mode_t mode = mark_flag(req);
    struct stat st = check(req, path);
    return json{{"chmod", path}, {"old_mode", st.st_mode & 07777}, {"new_mode", mode}}.dump();
  }

 protected:
  void undo(const json &rec, std::string_view uid) override {
    if (!rec.contains("path")) return;
    const std::string path = rec["path"];
    if (state_.path_held_by_other(path, uid)) return;
    if (!fs::recorded_inode(path, rec)) return;
    BLADE_FAILPOINT("os.file.chmod.destroy.before_chmod");
    if (::chmod(path.c_str(), rec["mode"].get<mode_t>()) != 0)
      throw sdk::FailedPrecondition(fs::errno_text("cannot chmod", path));
    BLADE_FAILPOINT("os.file.chmod.destroy.after_chmod");
  }

 private:
  struct stat check(const Request &req, const std::string &path) {
    refuse_protected(host_, "filepath", path);
    struct stat st = existing(path);
    if (S_ISLNK(st.st_mode))
      throw sdk::InvalidArgument("filepath: " + path + " is a symbolic link");
    state_.refuse_if_path_held("filepath", path, req.uid());
    return st;
  }
};

// ---------------------------------------------------------------- delete
// The file is moved (renamed when it can be) into the experiment's dir and
// moved back by destroy: its inode, bytes, mode, owner and times stay.
class FileDelete : public FileFault {
 public:
  using FileFault::FileFault;

  Outcome create(const Request &req, Call &call) override {
    const std::string path = filepath_flag(req);
    check(req, path);
    const std::string uid(req.uid());
    const std::string dir = state_.dir(uid);
    json rec = stash_record(path, dir + "/deleted");
    rec["fault"] = "file delete";
    state_.checkpoint(call, uid, rec);
    guarded(uid, rec, [&] {
      state_.claim_path("filepath", path, uid);
      BLADE_FAILPOINT("os.file.delete.before_move");
      fs::move_path(path, rec["backup"]);
      BLADE_FAILPOINT("os.file.delete.after_move");
    });
    json result = {{"deleted", path}, {"backup", rec["backup"]}, {"directory", rec["directory"]}};
    if (req.flag_bool("force")) result["note"] = kForceNote;
    return {result.dump(), rec.dump()};
  }

  std::string plan(const Request &req, Call &) override {
    const std::string path = filepath_flag(req);
    check(req, path);
    json plan = {{"delete", path}, {"backup_under", state_.dir(req.uid())}};
    if (req.flag_bool("force")) plan["note"] = kForceNote;
    return plan.dump();
  }

 protected:
  void undo(const json &record, std::string_view uid) override {
    // Records written before the write-ahead change nested the stash.
    const json &rec = record.contains("deleted") ? record["deleted"] : record;
    if (!rec.contains("path") || !rec.contains("backup")) return;
    if (state_.path_held_by_other(rec["path"], uid)) return;
    BLADE_FAILPOINT("os.file.delete.destroy.before_move");
    unstash(rec);
    BLADE_FAILPOINT("os.file.delete.destroy.after_move");
  }

 private:
  // ChaosBlade's --force is `rm -rf`, beyond undo: Blade accepts the flag
  // and keeps the file (or tree) restorable all the same.
  static constexpr const char *kForceNote =
      "force: ChaosBlade deletes for good; Blade keeps what it deletes and puts it back on "
      "destroy";

  void check(const Request &req, const std::string &path) {
    refuse_protected(host_, "filepath", path);
    existing(path);  // a file or a whole directory, as ChaosBlade's mv takes either
    state_.refuse_if_path_held("filepath", path, req.uid());
  }
};

// ---------------------------------------------------------------- move
class FileMove : public FileFault {
 public:
  using FileFault::FileFault;

  Outcome create(const Request &req, Call &call) override {
    const std::string path = filepath_flag(req);
    Plan p = resolve(req, path);
    const std::string uid(req.uid());
    const std::string dir = state_.dir(uid);
    struct stat src = existing(path);
    json rec = {{"fault", "file move"},
                {"path", path},
                {"destination", p.destination},
                {"backup_dir", dir},
                {"source_dev", src.st_dev},
                {"source_ino", src.st_ino},
                {"cross_device", p.cross_device},
                {"created_dirs", p.missing_dirs}};
    if (p.replaces) rec["replaced"] = stash_record(p.destination, dir + "/replaced");
    state_.checkpoint(call, uid, rec);
    guarded(uid, rec, [&] {
      state_.claim_path("filepath", path, uid);
      state_.claim_path("target", p.destination, uid);
      fs::make_dirs(fs::parent_of(p.destination));
      if (p.replaces) {
        BLADE_FAILPOINT("os.file.move.before_stash");
        fs::move_path(p.destination, rec["replaced"]["backup"]);
        BLADE_FAILPOINT("os.file.move.after_stash");
      }
      BLADE_FAILPOINT("os.file.move.before_move");
      fs::move_path(path, p.destination);
      BLADE_FAILPOINT("os.file.move.after_move");
      // Across filesystems the file is a copy with an inode of its own.
      struct stat moved = existing(p.destination, "target");
      if (!fs::same_inode(moved, src.st_dev, src.st_ino)) {
        rec["dev"] = moved.st_dev;
        rec["ino"] = moved.st_ino;
        state_.checkpoint(call, uid, rec);
      }
    });
    json result = {{"moved", path},
                   {"to", p.destination},
                   {"replaced", p.replaces},
                   {"created_dirs", p.missing_dirs}};
    return {result.dump(), rec.dump()};
  }

  std::string plan(const Request &req, Call &) override {
    const std::string path = filepath_flag(req);
    Plan p = resolve(req, path);
    return json{{"move", path},
                {"to", p.destination},
                {"replaces", p.replaces},
                {"creates_dirs", !p.missing_dirs.empty()}}
        .dump();
  }

 protected:
  void undo(const json &rec, std::string_view uid) override {
    if (!rec.contains("path")) return;
    const std::string path = rec["path"];
    const std::string dest = rec["destination"];
    if (state_.path_held_by_other(path, uid) || state_.path_held_by_other(dest, uid)) return;
    // Only our own file goes back (the inode it had, or got by a copy across
    // filesystems); something new at the original path is never overwritten.
    const bool ours = fs::recorded_inode(dest, rec, "source_dev", "source_ino") ||
                      fs::recorded_inode(dest, rec) ||
                      // A crash between a copy across filesystems and the
                      // record of its new inode: the claim on both names kept
                      // anyone else from putting a file there.
                      (rec.value("cross_device", false) && !rec.contains("ino") &&
                       !fs::lstat_at(path) && fs::lstat_at(dest));
    BLADE_FAILPOINT("os.file.move.destroy.before_move");
    if (ours) {
      if (fs::lstat_at(path))
        throw sdk::FailedPrecondition("filepath: " + path +
                                      " exists again; the moved file is still at " + dest);
      fs::move_path(dest, path);
    }
    fs::remove_tree(path + ".blade-partial");  // a copy a crash cut short
    BLADE_FAILPOINT("os.file.move.destroy.after_move");
    if (rec.contains("replaced")) {
      BLADE_FAILPOINT("os.file.move.destroy.before_unstash");
      fs::remove_tree(dest + ".blade-partial");
      unstash(rec["replaced"]);
      BLADE_FAILPOINT("os.file.move.destroy.after_unstash");
    }
    fs::remove_dirs_if_empty(dirs_of(rec));
  }

 private:
  struct Plan {
    std::string destination;
    bool replaces = false;
    bool cross_device = false;
    std::vector<std::string> missing_dirs;
  };

  Plan resolve(const Request &req, const std::string &path) {
    refuse_protected(host_, "filepath", path);
    struct stat src = existing(path);
    std::string target = req.flag_or("target", "");
    if (target.empty() || target[0] != '/')
      throw sdk::InvalidArgument("target: must be an absolute path, got '" + target + "'");
    while (target.size() > 1 && target.back() == '/')
      target.pop_back();
    // As in ChaosBlade, the target is the directory the file moves into
    // (and where destroy looks for it), never a new name for it.
    if (auto t = fs::lstat_at(target); t && !S_ISDIR(t->st_mode)) {
      const bool link_to_dir = S_ISLNK(t->st_mode) && std::filesystem::is_directory(target);
      if (!link_to_dir)
        throw sdk::InvalidArgument("target: " + target +
                                   " is not a directory; target names the directory to move "
                                   "the file into");
    }
    Plan p;
    p.destination = (target == "/" ? "" : target) + "/" + fs::base_of(path);
    refuse_protected(host_, "target", p.destination);
    if (p.destination == path) throw sdk::InvalidArgument("target: is where the file already is");
    if (S_ISDIR(src.st_mode) && p.destination.rfind(path + "/", 0) == 0)
      throw sdk::InvalidArgument("target: " + p.destination + " is inside " + path);
    if (fs::lstat_at(p.destination)) {
      if (!req.flag_bool("force"))
        throw sdk::AlreadyExists("target: " + p.destination + " exists (force replaces it)");
      p.replaces = true;
    }
    const std::string parent = fs::parent_of(p.destination);
    p.missing_dirs = fs::missing_dirs(parent);
    if (!p.missing_dirs.empty() && !req.flag_bool("auto-create-dir"))
      throw sdk::InvalidArgument("target: directory " + parent +
                                 " does not exist (auto-create-dir creates it)");
    // The nearest existing ancestor of the destination tells the device.
    std::string near = parent;
    while (!fs::lstat_at(near) && near != "/")
      near = fs::parent_of(near);
    auto dst_dev = fs::lstat_at(near);
    p.cross_device = dst_dev && dst_dev->st_dev != src.st_dev;
    state_.refuse_if_path_held("filepath", path, req.uid());
    state_.refuse_if_path_held("target", p.destination, req.uid());
    return p;
  }
};

}  // namespace

void register_file_faults(FaultTable &table, const Host &host) {
  table.add("file", "add", std::make_unique<FileAdd>(host));
  table.add("file", "append", std::make_unique<FileAppend>(host));
  table.add("file", "chmod", std::make_unique<FileChmod>(host));
  table.add("file", "delete", std::make_unique<FileDelete>(host));
  table.add("file", "move", std::make_unique<FileMove>(host));
  register_file_fdleak(table, host);
}

}  // namespace blade::os
