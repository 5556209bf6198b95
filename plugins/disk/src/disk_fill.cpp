#include "disk_fill.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <sstream>
#include <vector>

#include <blade/failpoint.hpp>
#include <nlohmann/json.hpp>

namespace blade::disk {
namespace {

// Writing zeros (where fallocate is not supported) goes in pieces this big,
// with a look at cancellation between them.
constexpr std::size_t kWritePiece = 4 * kMiB;

std::string mb(std::uint64_t bytes) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(bytes % kMiB == 0 ? 0 : 1);
  out << static_cast<double>(bytes) / static_cast<double>(kMiB) << " MB";
  return out.str();
}

std::string percent_text(double p) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(1);
  out << p << "%";
  return out.str();
}

// Writes `bytes` of zeros at the start of `fd`: 0, or the errno that
// stopped it. With `to_full`, running out of space is the goal reached, not
// an error. Throws sdk::Cancelled when the host gives up on the call.
int write_zeros(int fd, std::uint64_t bytes, bool to_full, sdk::Call &call) {
  const std::vector<char> zeros(kWritePiece, 0);
  std::uint64_t done = 0;
  while (done < bytes) {
    call.check();
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(kWritePiece, bytes - done));
    const ssize_t w = ::pwrite(fd, zeros.data(), n, static_cast<off_t>(done));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && to_full && errno == ENOSPC) break;
    if (w < 0) return errno;
    done += static_cast<std::uint64_t>(w);
    call.progress(static_cast<int>(100 * done / bytes));
  }
  // Delayed allocation may not have reserved every block yet: only a sync
  // makes the space (and an ENOSPC) real now.
  if (::fdatasync(fd) != 0 && !(to_full && errno == ENOSPC)) return errno;
  return 0;
}

// fallocate of `bytes`: 0, EOPNOTSUPP, or the errno. With `to_full` an
// ENOSPC is expected (the file's own extent blocks come out of the same free
// space, and another writer may have taken some since the plan): the rest is
// then taken in ever smaller pieces until not one block fits. A failed
// fallocate may keep part of its allocation (ext4 does); allocating over it
// again costs nothing.
int allocate_fill(int fd, std::uint64_t bytes, bool to_full) {
  const int err = allocate(fd, bytes);
  if (err != ENOSPC || !to_full) return err;
  std::uint64_t offset = 0;
  std::uint64_t piece = 64 * kMiB;
  while (offset < bytes && piece >= 4096) {
    const std::uint64_t n = std::min(piece, bytes - offset);
    if (::fallocate(fd, 0, static_cast<off_t>(offset), static_cast<off_t>(n)) == 0) {
      offset += n;
    } else if (errno == ENOSPC) {
      piece /= 2;
    } else {
      return errno == ENOSYS ? EOPNOTSUPP : errno;
    }
  }
  return 0;
}

// What a fill request asks for, worked out against the filesystem as it is.
struct FillPlan {
  std::string dir;
  std::string file;
  std::string by;          // the flag that set the target: percent, reserve or size
  std::uint64_t bytes = 0;  // what the fill takes
  std::uint64_t asked = 0;  // what `by` asked for (more than `bytes` for a size beyond the free space)
  bool to_full = false;     // the target is everything available
  FsUsage before;
  bool retain_handle = false;
  bool safety_floor = false;
};

// Throws sdk::InvalidArgument naming the deciding flag when the target
// cannot be reached (already past it, nothing available, fewer MB than
// `reserve`) or, with `safety-floor`, may not (it would leave less free).
FillPlan plan_fill(const sdk::Request &req, const std::vector<std::string> &protected_paths) {
  FillPlan p;
  p.dir = resolve_target_dir(req.flag_or("path", "/"), protected_paths);
  p.file = fill_file(p.dir, req.uid());
  p.retain_handle = req.flag_bool("retain-handle");
  p.safety_floor = req.flag_bool("safety-floor");
  p.before = usage_of(p.dir);
  const FsUsage &u = p.before;
  const std::string where = " on " + p.dir;

  // Precedence as in ChaosBlade: percent, then reserve, then size.
  if (auto percent = req.flag("percent"); percent && !percent->empty()) {
    p.by = "percent";
    // ChaosBlade's percent: of the whole size, with root's reserved blocks
    // counted as used (size - available), so 100 means nothing available.
    const double target = static_cast<double>(req.flag_int("percent", 0));
    const std::uint64_t unavailable = u.size - std::min(u.size, u.available);
    const auto target_unavailable =
        static_cast<std::uint64_t>(std::ceil(static_cast<double>(u.size) * target / 100.0));
    if (target_unavailable <= unavailable) {
      throw sdk::InvalidArgument("percent: the filesystem" + where + " is already " +
                                 percent_text(u.unavailable_percent()) +
                                 " used (size - available), at or above the " +
                                 percent_text(target) + " asked");
    }
    p.asked = target_unavailable - unavailable;
  } else if (auto reserve = req.flag("reserve"); reserve && !reserve->empty()) {
    p.by = "reserve";
    const auto keep = static_cast<std::uint64_t>(req.flag_int("reserve", 0)) * kMiB;
    if (u.available <= keep) {
      throw sdk::InvalidArgument("reserve: only " + mb(u.available) + " available" + where +
                                 ", not more than the " + mb(keep) + " to reserve");
    }
    p.asked = u.available - keep;
  } else if (auto size = req.flag("size"); size && !size->empty()) {
    p.by = "size";
    p.asked = static_cast<std::uint64_t>(req.flag_int("size", 0)) * kMiB;
  } else {
    throw sdk::InvalidArgument("size: give size, percent or reserve");
  }
  if (u.available == 0)
    throw sdk::InvalidArgument(p.by + ": the filesystem" + where + " is already full");
  // A size beyond the free space fills the filesystem to full, as in
  // ChaosBlade (its own example asks 40000 MB of a disk with 34 GB free).
  p.bytes = std::min(p.asked, u.available);
  p.to_full = p.bytes == u.available;

  const std::uint64_t left = u.available - p.bytes;
  if (p.safety_floor && left < u.safety_floor()) {
    const FsUsage after = u.after_taking(p.bytes);
    throw sdk::InvalidArgument(p.by + ": filling " + mb(p.bytes) + " would leave " + mb(left) +
                               " free" + where + " (" + percent_text(after.used_percent()) +
                               " used), below the safety floor of " + mb(u.safety_floor()) +
                               " (1% of the filesystem, at most 1 GiB) that safety-floor keeps");
  }
  return p;
}

// Said in the result when a size beyond the free space was cut to it.
std::string clamp_note(const FillPlan &p) {
  if (p.asked <= p.bytes) return "";
  return p.by + ": " + mb(p.asked) + " asked but only " + mb(p.bytes) + " available on " + p.dir +
         ": the filesystem is filled to full";
}

nlohmann::json restore_of(const FillPlan &p) {
  return {{"file", p.file}, {"bytes", p.bytes}};
}

}  // namespace

DiskFill::DiskFill(sdk::Host host) : host_(host) {}

sdk::Outcome DiskFill::create(const sdk::Request &req, sdk::Call &call) {
  const FillPlan p = plan_fill(req, host_.protected_paths());
  const std::string uid(req.uid());
  held_.erase(uid);  // a retried create starts afresh
  // Written ahead of the file: a crash from here on leaves a record naming
  // it. One record covers every later step, because the fallocate or the
  // zeros go into that file and removing it undoes them all.
  call.save_restore(restore_of(p).dump());
  BLADE_FAILPOINT("disk.fill.before_create");
  UniqueFd fd = create_owned_file(p.file, O_WRONLY);
  auto fail = [&](const std::string &what, int err) {
    fd.reset();
    ::unlink(p.file.c_str());
    if (err == ENOSPC || err == EDQUOT) {
      throw sdk::FailedPrecondition(p.by + ": not enough space: " + what + " " + mb(p.bytes) +
                                    " on " + p.dir + ": " + std::strerror(err));
    }
    throw sdk::FailedPrecondition(what + " " + p.file + ": " + std::strerror(err));
  };

  std::string method = "fallocate";
  BLADE_FAILPOINT("disk.fill.before_fallocate");
  const int allocated = allocate_fill(fd.get(), p.bytes, p.to_full);
  BLADE_FAILPOINT("disk.fill.after_fallocate");
  if (allocated != 0) {
    if (allocated != EOPNOTSUPP) fail("fallocate", allocated);
    method = "write";
    try {
      BLADE_FAILPOINT("disk.fill.before_write");
      if (const int err = write_zeros(fd.get(), p.bytes, p.to_full, call); err != 0)
        fail("write", err);
      BLADE_FAILPOINT("disk.fill.after_write");
    } catch (const sdk::Cancelled &) {
      fd.reset();
      ::unlink(p.file.c_str());
      throw;
    }
  }
  struct stat st {};
  const std::uint64_t taken =
      ::fstat(fd.get(), &st) == 0 ? static_cast<std::uint64_t>(st.st_blocks) * 512 : p.bytes;
  if (p.retain_handle) held_.emplace(uid, std::move(fd));

  const FsUsage after = usage_of(p.dir);
  nlohmann::json result = {{"file", p.file},
                           {"bytes", p.bytes},
                           {"asked_bytes", p.asked},
                           {"allocated_bytes", taken},
                           {"to_full", p.to_full},
                           {"by", p.by},
                           {"method", method},
                           {"retain_handle", p.retain_handle},
                           {"safety_floor", p.safety_floor},
                           {"before", to_json(p.before)},
                           {"after", to_json(after)}};
  if (const std::string note = clamp_note(p); !note.empty()) result["note"] = note;
  return {result.dump(), restore_of(p).dump()};
}

void DiskFill::destroy(const sdk::Request &req, sdk::Call &) {
  const std::string uid(req.uid());
  // The record's file, and the uid-derived name in the flagged dir: with no
  // record (a crash before the first save, or a 1.1 host that stores the
  // record only when create returns) the name is all there is to go by.
  std::vector<std::string> files;
  const auto record = restore_record(req);
  if (auto f = record.find("file"); f != record.end() && f->is_string())
    files.push_back(f->get<std::string>());
  if (auto dir = flagged_dir(req)) files.push_back(fill_file(*dir, uid));
  BLADE_FAILPOINT("disk.fill.destroy.before_unlink");
  // Unlink before closing a held handle: the space comes back at the close.
  remove_owned_files(files, uid);
  BLADE_FAILPOINT("disk.fill.destroy.after_unlink");
  held_.erase(uid);
}

std::string DiskFill::dry_run(const sdk::Request &req, sdk::Call &) {
  const FillPlan p = plan_fill(req, host_.protected_paths());
  const FsUsage after = p.before.after_taking(p.bytes);
  nlohmann::json plan = {{"file", p.file},
                         {"bytes", p.bytes},
                         {"asked_bytes", p.asked},
                         {"to_full", p.to_full},
                         {"by", p.by},
                         {"retain_handle", p.retain_handle},
                         {"safety_floor", p.safety_floor},
                         {"safety_floor_bytes", p.before.safety_floor()},
                         {"before", to_json(p.before)},
                         {"after", to_json(after)}};
  if (const std::string note = clamp_note(p); !note.empty()) plan["note"] = note;
  return plan.dump();
}

}  // namespace blade::disk
