#include "disk_fill.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <sstream>
#include <vector>

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

// Writes `bytes` of zeros at the start of `fd`; false on ENOSPC and the like
// (errno set), throws sdk::Cancelled when the host gives up on the call.
bool write_zeros(int fd, std::uint64_t bytes, sdk::Call &call) {
  const std::vector<char> zeros(kWritePiece, 0);
  std::uint64_t done = 0;
  while (done < bytes) {
    call.check();
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(kWritePiece, bytes - done));
    const ssize_t w = ::pwrite(fd, zeros.data(), n, static_cast<off_t>(done));
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<std::uint64_t>(w);
    call.progress(static_cast<int>(100 * done / bytes));
  }
  // Delayed allocation may not have reserved every block yet: only a sync
  // makes the space (and an ENOSPC) real now.
  return ::fdatasync(fd) == 0;
}

// What a fill request asks for, worked out against the filesystem as it is.
struct FillPlan {
  std::string dir;
  std::string file;
  std::string by;  // the flag that set the target: percent, reserve or size
  std::uint64_t bytes = 0;
  FsUsage before;
  bool retain_handle = false;
};

// Throws sdk::InvalidArgument naming the deciding flag when the target
// cannot or may not be reached (already past it, more than is available,
// below the safety floor without force).
FillPlan plan_fill(const sdk::Request &req) {
  FillPlan p;
  p.dir = resolve_target_dir(req.flag_or("path", "/"));
  p.file = fill_file(p.dir, req.uid());
  p.retain_handle = req.flag_bool("retain-handle");
  p.before = usage_of(p.dir);
  const FsUsage &u = p.before;
  const std::string where = " on " + p.dir;

  // Precedence as in ChaosBlade: percent, then reserve, then size.
  if (auto percent = req.flag("percent"); percent && !percent->empty()) {
    p.by = "percent";
    const double target = static_cast<double>(req.flag_int("percent", 0));
    const auto whole = static_cast<double>(u.used + u.available);
    const auto target_used = static_cast<std::uint64_t>(std::ceil(whole * target / 100.0));
    if (target_used <= u.used) {
      throw sdk::InvalidArgument("percent: the filesystem" + where + " is already " +
                                 percent_text(u.used_percent()) + " used, at or above the " +
                                 percent_text(target) + " asked");
    }
    p.bytes = target_used - u.used;
  } else if (auto reserve = req.flag("reserve"); reserve && !reserve->empty()) {
    p.by = "reserve";
    const auto keep = static_cast<std::uint64_t>(req.flag_int("reserve", 0)) * kMiB;
    if (u.available <= keep) {
      throw sdk::InvalidArgument("reserve: only " + mb(u.available) + " available" + where +
                                 ", not more than the " + mb(keep) + " to reserve");
    }
    p.bytes = u.available - keep;
  } else if (auto size = req.flag("size"); size && !size->empty()) {
    p.by = "size";
    p.bytes = static_cast<std::uint64_t>(req.flag_int("size", 0)) * kMiB;
  } else {
    throw sdk::InvalidArgument("size: give size, percent or reserve");
  }

  if (p.bytes > u.available) {
    throw sdk::InvalidArgument(p.by + ": not enough space: " + mb(p.bytes) + " asked but only " +
                               mb(u.available) + " available" + where);
  }
  const std::uint64_t left = u.available - p.bytes;
  if (left < u.safety_floor() && !req.flag_bool("force")) {
    const FsUsage after = u.after_taking(p.bytes);
    throw sdk::InvalidArgument(p.by + ": filling " + mb(p.bytes) + " would leave " + mb(left) +
                               " free" + where + " (" + percent_text(after.used_percent()) +
                               " used), below the safety floor of " + mb(u.safety_floor()) +
                               " (1% of the filesystem, at most 1 GiB); give force to go below it");
  }
  return p;
}

}  // namespace

sdk::Outcome DiskFill::create(const sdk::Request &req, sdk::Call &call) {
  const FillPlan p = plan_fill(req);
  const std::string uid(req.uid());
  held_.erase(uid);  // a retried create starts afresh
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
  if (const int err = allocate(fd.get(), p.bytes); err != 0) {
    if (err != EOPNOTSUPP) fail("fallocate", err);
    method = "write";
    try {
      if (!write_zeros(fd.get(), p.bytes, call)) fail("write", errno);
    } catch (const sdk::Cancelled &) {
      fd.reset();
      ::unlink(p.file.c_str());
      throw;
    }
  }
  if (p.retain_handle) held_.emplace(uid, std::move(fd));

  const FsUsage after = usage_of(p.dir);
  nlohmann::json result = {{"file", p.file},
                           {"bytes", p.bytes},
                           {"by", p.by},
                           {"method", method},
                           {"retain_handle", p.retain_handle},
                           {"before", to_json(p.before)},
                           {"after", to_json(after)}};
  nlohmann::json restore = {{"file", p.file}, {"bytes", p.bytes}};
  return {result.dump(), restore.dump()};
}

void DiskFill::destroy(const sdk::Request &req) {
  const std::string uid(req.uid());
  const std::string file = restore_record(req).value("file", "");
  // Unlink before closing a held handle: the space comes back at the close.
  if (!file.empty()) remove_owned_file(file, uid);
  held_.erase(uid);
}

std::string DiskFill::dry_run(const sdk::Request &req) {
  const FillPlan p = plan_fill(req);
  const FsUsage after = p.before.after_taking(p.bytes);
  return nlohmann::json{{"file", p.file},
                        {"bytes", p.bytes},
                        {"by", p.by},
                        {"retain_handle", p.retain_handle},
                        {"safety_floor_bytes", p.before.safety_floor()},
                        {"before", to_json(p.before)},
                        {"after", to_json(after)}}
      .dump();
}

}  // namespace blade::disk
