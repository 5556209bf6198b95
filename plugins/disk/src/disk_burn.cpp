#include "disk_burn.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include <blade/failpoint.hpp>
#include <nlohmann/json.hpp>

#include "target_dir.hpp"

namespace blade::disk {
namespace {

// One read or write request is at most this big (a block is issued as
// several): the kernel splits large requests for the device anyway, and a
// stop is seen between two of them, well within 1 s on any disk.
constexpr std::uint64_t kPiece = 8 * kMiB;
// Each file holds up to this much (and at least one block): with O_DIRECT
// (or the cache dropped) every pass reaches the disk, so a bigger file
// would only take space.
constexpr std::uint64_t kFileBudget = 256 * kMiB;
constexpr std::uint64_t kMaxFileBlocks = 4;
// O_DIRECT wants buffers aligned to the device's logical block; a page
// covers every common one.
constexpr std::size_t kAlign = 4096;

struct BurnPlan {
  std::string dir;
  std::uint64_t block = 0;
  std::uint64_t file_bytes = 0;  // of each file
  bool read = false;
  bool write = false;
  std::string read_file, write_file;
  FsUsage before;

  std::uint64_t needs() const { return file_bytes * ((read ? 1 : 0) + (write ? 1 : 0)); }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    if (read) out.push_back(read_file);
    if (write) out.push_back(write_file);
    return out;
  }
};

BurnPlan plan_burn(const sdk::Request &req, const std::vector<std::string> &protected_paths) {
  BurnPlan p;
  p.read = req.flag_bool("read");
  p.write = req.flag_bool("write");
  if (!p.read && !p.write) throw sdk::InvalidArgument("read: give read, write or both");
  p.dir = resolve_target_dir(req.flag_or("path", "/"), protected_paths);
  p.block = static_cast<std::uint64_t>(req.flag_int("size", 10)) * kMiB;
  p.file_bytes = p.block * std::clamp<std::uint64_t>(kFileBudget / p.block, 1, kMaxFileBlocks);
  p.read_file = burn_read_file(p.dir, req.uid());
  p.write_file = burn_write_file(p.dir, req.uid());
  p.before = usage_of(p.dir);
  const std::uint64_t floor = p.before.safety_floor();
  // A filesystem that reports no size (ramfs) cannot be checked.
  if (p.before.size > 0 && p.needs() + floor > p.before.available) {
    throw sdk::InvalidArgument("size: not enough space: burning needs " +
                               std::to_string(p.needs() / kMiB) + " MB of files on " + p.dir +
                               " above the " + std::to_string(floor / kMiB) +
                               " MB safety floor, and only " +
                               std::to_string(p.before.available / kMiB) + " MB are available");
  }
  return p;
}

struct FreeDeleter {
  void operator()(void *p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<char, FreeDeleter>;

AlignedBuffer aligned_buffer(std::size_t bytes) {
  void *p = nullptr;
  if (::posix_memalign(&p, kAlign, bytes) != 0) throw std::bad_alloc();
  std::memset(p, 0xa5, bytes);  // not zeros: nothing on the way may skip them
  return AlignedBuffer(static_cast<char *>(p));
}

struct IoFile {
  UniqueFd fd;
  bool direct = false;
};

// O_DIRECT where the filesystem takes it (ramfs, for one, does not); a
// second open without it fails again for any other reason, and says so.
IoFile open_io_file(const std::string &path, int flags) {
  IoFile f;
  f.fd = open_owned_file(path, flags | O_DIRECT);
  f.direct = static_cast<bool>(f.fd);
  if (!f.fd) f.fd = create_owned_file(path, flags);
  return f;
}

std::uint64_t piece_at(std::uint64_t offset, std::uint64_t block) {
  return std::min(kPiece, block - offset % block);
}

// The restore record: the files to remove. Also the shape written ahead,
// naming each file before it is created.
std::string restore_of(const std::vector<std::string> &files) {
  return nlohmann::json{{"files", files}}.dump();
}

}  // namespace

// One experiment's threads and files; destroying it stops the threads,
// closes and removes the files.
class Burner {
 public:
  Burner(const sdk::Host &host, std::string uid, BurnPlan plan, sdk::Call &call)
      : host_(host), uid_(std::move(uid)), plan_(std::move(plan)) {
    // Each file is named in a record written ahead of its creation, so a
    // crash at any point leaves a record naming every file that may exist.
    std::vector<std::string> ahead;
    try {
      if (plan_.read) {
        ahead.push_back(plan_.read_file);
        call.save_restore(restore_of(ahead));
        BLADE_FAILPOINT("disk.burn.before_create_read");
        read_ = open_io_file(plan_.read_file, O_RDWR);
        BLADE_FAILPOINT("disk.burn.before_fill_read");
        fill_read_file(call);
        BLADE_FAILPOINT("disk.burn.after_fill_read");
      }
      if (plan_.write) {
        ahead.push_back(plan_.write_file);
        call.save_restore(restore_of(ahead));
        BLADE_FAILPOINT("disk.burn.before_create_write");
        write_ = open_io_file(plan_.write_file, O_WRONLY);
        BLADE_FAILPOINT("disk.burn.before_allocate_write");
        // Its space taken now, so a filesystem filling up later cannot stop
        // the burn with ENOSPC (where fallocate is missing, the first pass
        // takes it).
        if (const int err = allocate(write_.fd.get(), plan_.file_bytes);
            err != 0 && err != EOPNOTSUPP) {
          throw sdk::FailedPrecondition("size: cannot allocate " + plan_.write_file + ": " +
                                        std::strerror(err));
        }
        BLADE_FAILPOINT("disk.burn.after_allocate_write");
      }
    } catch (...) {
      remove_files();
      throw;
    }
    // Threads last: every member they use exists.
    if (plan_.read) threads_.emplace_back([this] { run(true); });
    if (plan_.write) threads_.emplace_back([this] { run(false); });
  }
  Burner(const Burner &) = delete;
  Burner &operator=(const Burner &) = delete;
  ~Burner() {
    stop_ = true;
    for (auto &t : threads_)
      t.join();
    host_.info("disk burn " + uid_ + ": read " + std::to_string(bytes_read_ / kMiB) +
               " MB, wrote " + std::to_string(bytes_written_ / kMiB) + " MB in " + plan_.dir);
    remove_files();
  }

  bool direct(bool reading) const { return reading ? read_.direct : write_.direct; }
  // An io error stopped it (its files are gone already).
  bool failed() const { return failed_; }

 private:
  // The read file's blocks are written for real (a hole or an unwritten
  // extent reads back without touching the disk).
  void fill_read_file(sdk::Call &call) {
    const AlignedBuffer buffer = piece_buffer();
    for (std::uint64_t off = 0; off < plan_.file_bytes;) {
      call.check();
      const std::uint64_t n = piece_at(off, plan_.block);
      const ssize_t w = ::pwrite(read_.fd.get(), buffer.get(), n, static_cast<off_t>(off));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        const int err = errno;
        throw sdk::FailedPrecondition("size: cannot write " + plan_.read_file + ": " +
                                      std::strerror(w == 0 ? EIO : err));
      }
      off += static_cast<std::uint64_t>(w);
    }
    if (::fdatasync(read_.fd.get()) != 0)
      throw sdk::FailedPrecondition("cannot sync " + plan_.read_file + ": " + std::strerror(errno));
    if (!read_.direct) ::posix_fadvise(read_.fd.get(), 0, 0, POSIX_FADV_DONTNEED);
  }

  void run(bool reading) {
    IoFile &f = reading ? read_ : write_;
    std::atomic<std::uint64_t> &counter = reading ? bytes_read_ : bytes_written_;
    // Each thread its own buffer: the read thread writes into it.
    const AlignedBuffer buffer = piece_buffer();
    std::uint64_t off = 0;
    while (!stop_.load(std::memory_order_relaxed)) {
      const std::uint64_t n = piece_at(off, plan_.block);
      const ssize_t done = reading ? ::pread(f.fd.get(), buffer.get(), n, static_cast<off_t>(off))
                                   : ::pwrite(f.fd.get(), buffer.get(), n, static_cast<off_t>(off));
      if (done < 0 && errno == EINTR) continue;
      if (done < 0) {
        const std::string why = std::string(reading ? "read " : "write ") +
                                (reading ? plan_.read_file : plan_.write_file) + ": " +
                                std::strerror(errno);
        // The experiment becomes failed, and a failed one is never
        // destroyed: stop the other direction and leave nothing behind now.
        failed_ = true;
        stop_ = true;
        f.fd.reset();
        remove_files();
        host_.fault_ended(uid_, "disk burn stopped: " + why);
        return;
      }
      counter += static_cast<std::uint64_t>(done);
      off += static_cast<std::uint64_t>(done);
      const bool block_done = done == 0 || off % plan_.block == 0;
      // Buffered: the block goes to the disk now, not at the flusher's pace.
      if (!reading && !f.direct && block_done) ::fdatasync(f.fd.get());
      if (done == 0 || off >= plan_.file_bytes) {
        off = 0;
        // Buffered: the next pass reads from the disk, not the page cache.
        if (reading && !f.direct) ::posix_fadvise(f.fd.get(), 0, 0, POSIX_FADV_DONTNEED);
      }
    }
    f.fd.reset();  // only this thread uses it once running
  }

  AlignedBuffer piece_buffer() const {
    return aligned_buffer(static_cast<std::size_t>(std::min(kPiece, plan_.block)));
  }

  void remove_files() {
    for (const auto &file : plan_.files()) {
      try {
        remove_owned_file(file, uid_);
      } catch (const std::exception &e) {
        host_.warn(e.what());
      }
    }
  }

  const sdk::Host host_;
  const std::string uid_;
  const BurnPlan plan_;
  IoFile read_, write_;
  std::atomic<bool> stop_{false}, failed_{false};
  std::atomic<std::uint64_t> bytes_read_{0}, bytes_written_{0};
  std::vector<std::thread> threads_;
};

DiskBurn::DiskBurn(sdk::Host host) : host_(host) {}
DiskBurn::~DiskBurn() = default;

sdk::Outcome DiskBurn::create(const sdk::Request &req, sdk::Call &call) {
  BurnPlan p = plan_burn(req, host_.protected_paths());
  const std::string uid(req.uid());
  burners_.erase(uid);  // a retried create: never two sets of threads
  std::erase_if(burners_, [](const auto &b) { return b.second->failed(); });
  nlohmann::json files = p.files();
  auto burner = std::make_unique<Burner>(host_, uid, p, call);
  nlohmann::json result = {
      {"dir", p.dir}, {"block_bytes", p.block}, {"file_bytes", p.file_bytes}, {"files", files}};
  if (p.read) result["read_direct"] = burner->direct(true);
  if (p.write) result["write_direct"] = burner->direct(false);
  burners_.emplace(uid, std::move(burner));
  return {result.dump(), restore_of(p.files())};
}

void DiskBurn::destroy(const sdk::Request &req, sdk::Call &) {
  const std::string uid(req.uid());
  BLADE_FAILPOINT("disk.burn.destroy.before_stop");
  burners_.erase(uid);  // stops the threads, removes the files
  BLADE_FAILPOINT("disk.burn.destroy.after_stop");
  // After a restart no burner is left: the record's files, and both
  // uid-derived names in the flagged dir, since a crash before the first
  // record leaves files no record names (and a record may name a file never
  // created: removing what is not there is success).
  std::vector<std::string> files;
  const auto record = restore_record(req);
  if (auto listed = record.find("files"); listed != record.end() && listed->is_array())
    for (const auto &f : *listed)
      if (f.is_string()) files.push_back(f.get<std::string>());
  if (auto dir = flagged_dir(req)) {
    files.push_back(burn_read_file(*dir, uid));
    files.push_back(burn_write_file(*dir, uid));
  }
  remove_owned_files(files, uid);
  BLADE_FAILPOINT("disk.burn.destroy.after_unlink");
}

std::string DiskBurn::dry_run(const sdk::Request &req, sdk::Call &) {
  const BurnPlan p = plan_burn(req, host_.protected_paths());
  return nlohmann::json{
      {"dir", p.dir},       {"block_bytes", p.block}, {"file_bytes", p.file_bytes},
      {"files", p.files()}, {"bytes", p.needs()},     {"filesystem", to_json(p.before)}}
      .dump();
}

}  // namespace blade::disk
