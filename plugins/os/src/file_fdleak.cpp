// file fdleak: ChaosBlade's "leaked descriptor of a deleted file" — space
// on a filesystem held by an open file that has no name, so `ls` and `du`
// find nothing while `df` shows the space taken. The file is made with
// O_TMPFILE, nameless from the first instant: there is no step a crash
// could leave behind (the kernel frees the space when the descriptor
// closes, and a dead daemon's descriptors are closed), so no restore record
// is written and destroy only closes the descriptor.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "../../common/handles.hpp"
#include "../../common/path_guard.hpp"
#include "fault.hpp"
#include "file_fdleak.hpp"

namespace blade::os {
namespace {

using nlohmann::json;

struct Leak {
  std::string dir;
  int percent = 0;
  std::uint64_t total = 0;      // bytes of the filesystem (f_blocks)
  std::uint64_t available = 0;  // bytes an unprivileged writer may take
  std::uint64_t bytes = 0;      // what the leaked file takes
};

// "50" or "50%", 1..100, as ChaosBlade takes it.
int percent_flag(const Request &req) {
  std::string text = req.flag_or("percent", "");
  if (!text.empty() && text.back() == '%') text.pop_back();
  if (text.empty() || text.size() > 3 || text.find_first_not_of("0123456789") != std::string::npos)
    throw sdk::InvalidArgument("percent: must be a whole number from 1 to 100, e.g. 50 or 50%");
  const int p = std::stoi(text);
  if (p < 1 || p > 100)
    throw sdk::InvalidArgument("percent: must be a whole number from 1 to 100, got " + text);
  return p;
}

Leak plan_leak(const Request &req, const Host &host) {
  Leak l;
  l.percent = percent_flag(req);
  l.dir = req.flag_or("directory", "/tmp");
  if (l.dir.empty() || l.dir[0] != '/')
    throw sdk::InvalidArgument("directory: must be an absolute path, got '" + l.dir + "'");
  plugins::refuse_protected("directory", l.dir, host.protected_paths(), false);
  struct stat st {};
  if (::stat(l.dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw sdk::InvalidArgument("directory: " + l.dir + " is not an existing directory");
  struct statvfs s {};
  if (::statvfs(l.dir.c_str(), &s) != 0)
    throw sdk::InvalidArgument("directory: statvfs " + l.dir + ": " + std::strerror(errno));
  const std::uint64_t unit = s.f_frsize ? s.f_frsize : s.f_bsize;
  l.total = static_cast<std::uint64_t>(s.f_blocks) * unit;
  l.available = static_cast<std::uint64_t>(s.f_bavail) * unit;
  // ChaosBlade's figure: a percent of the whole filesystem, whatever is in use.
  l.bytes = l.total / 100 * static_cast<std::uint64_t>(l.percent);
  if (l.bytes == 0)
    throw sdk::InvalidArgument("directory: the filesystem of " + l.dir + " reports no size");
  if (l.bytes > l.available)
    throw sdk::InvalidArgument("percent: " + std::to_string(l.percent) + "% of " + l.dir +
                               "'s filesystem is " + std::to_string(l.bytes >> 20) +
                               " MB, more than the " + std::to_string(l.available >> 20) +
                               " MB available");
  return l;
}

json describe(const Leak &l) {
  return {{"directory", l.dir},
          {"percent", l.percent},
          {"bytes", l.bytes},
          {"filesystem_bytes", l.total},
          {"available_bytes_before", l.available},
          {"note",
           "the file is nameless from the start (O_TMPFILE), where ChaosBlade creates "
           "<prefix>* and unlinks it: prefix names nothing"}};
}

class FileFdleak : public Fault {
 public:
  explicit FileFdleak(const Host &host) : host_(host) {}

  Outcome create(const Request &req, Call &) override {
    const Leak l = plan_leak(req, host_);
    plugins::UniqueFd fd(::open(l.dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (!fd) {
      if (errno == EOPNOTSUPP || errno == EISDIR)
        throw sdk::InvalidArgument("directory: the filesystem of " + l.dir +
                                   " cannot hold a nameless file (O_TMPFILE)");
      throw sdk::FailedPrecondition("cannot create a file in " + l.dir + ": " +
                                    std::strerror(errno));
    }
    if (::fallocate(fd.get(), 0, 0, static_cast<off_t>(l.bytes)) != 0) {
      const int err = errno;
      if (err == EOPNOTSUPP || err == ENOSYS)
        throw sdk::InvalidArgument("directory: the filesystem of " + l.dir +
                                   " cannot allocate space (fallocate)");
      throw sdk::FailedPrecondition("cannot allocate " + std::to_string(l.bytes) + " bytes in " +
                                    l.dir + ": " + std::strerror(err));
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      held_[std::string(req.uid())] = std::move(fd);
    }
    return {describe(l).dump(), "{}"};
  }

  // Closing the descriptor frees the space. After a restart there is
  // nothing: the descriptor died with the daemon.
  void destroy(const Request &req, Call &) override {
    std::lock_guard<std::mutex> lock(mu_);
    held_.erase(std::string(req.uid()));
  }

  std::string plan(const Request &req, Call &) override {
    return describe(plan_leak(req, host_)).dump();
  }

 private:
  Host host_;
  std::mutex mu_;
  std::map<std::string, plugins::UniqueFd> held_;
};

}  // namespace

void register_file_fdleak(FaultTable &table, const Host &host) {
  table.add("file", "fdleak", std::make_unique<FileFdleak>(host));
}

}  // namespace blade::os
