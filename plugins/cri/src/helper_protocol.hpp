// The cri plugin and its helper (blade-cri-helper) talk JSON lines over a
// socketpair that the helper has as fd 3. One definition of the messages,
// used by both sides.
//
// plugin -> helper, first line: a HelperRequest (to_json below).
// helper -> plugin, any number of:
//   {"type":"log","level":"info|warn|error","message":"..."}
//   {"type":"save_restore","record":<inner record JSON>}
//        the inner fault's write-ahead record; the plugin stores the outer
//        record around it and answers {"type":"ack","ok":true} or
//        {"type":"ack","ok":false,"error":"..."} (the step is then not taken)
//   {"type":"report","report":<JSON object>}          destroy's report
//   {"type":"fault_ended","reason":"..."}             the fault ended on its own
//   {"type":"progress","percent":N,"note":"..."}      a long call's progress
// then exactly one
//   {"type":"done","status":<blade_status>,"error":"...",
//    "result":<JSON>,"restore":<JSON>,"plan":<JSON>}
// After a create's done with status 0 the helper stays, holding the fault
// (burner threads, held sockets, tracers), until the plugin writes
// {"op":"destroy","deadline_ms":N} (N as in HelperRequest; it runs destroy
// on the same instance, from the create's record, sends report/done
// and exits) or closes the socket (the daemon is gone: it exits at once, so
// what lives only in it dies as the host plugins' faults die with bladed;
// what persists is undone later by a fresh helper's stateless destroy).
// A dry_run or destroy request: the helper exits after its done.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace blade::cri {

// What the helper joins before it runs the fault, checked against the
// container's init (pid + start time, so a reused pid is refused).
struct EnterPlan {
  int pid = 0;
  std::uint64_t start = 0;
  bool mnt = false;
  bool pid_ns = false;  // the fault then runs in a child forked inside it
  bool net = false;
  bool ipc = false;
  bool uts = false;
  // mnt needs pid_ns: the container's /proc shows only its own processes.
  // Join every cgroup hierarchy of the init (v1 and v2), so cpu is
  // throttled by the container's quota and memory charged to its limit.
  bool cgroup = false;
};

// The inner faults' state_dir as they see it: the host's per-container dir,
// held open as the helper's fd 4 across setns. Paths under it in what a
// fault says (a backup's place) are shown to users as host paths instead.
inline constexpr const char *kInnerStateDir = "/proc/self/fd/4";

struct HelperRequest {
  std::string op;  // "create", "destroy" or "dry_run"
  std::string uid;
  std::string target;  // the inner (os/disk/network) target and action
  std::string action;
  std::vector<std::pair<std::string, std::string>> flags;  // container flags removed
  std::optional<std::string> restore_json;                 // destroy: the inner record
  EnterPlan enter;
  // The inner faults' state dir on the host (per container). The helper
  // keeps it open as fd 4 across setns and hands the faults
  // /proc/self/fd/4, so records and backups land on the host's disk.
  std::string state_dir;
  int daemon_pid = 0;
  std::string config_json = "{}";  // the inner Host's config (e.g. cpu meter)
  // Milliseconds left of the call when the request is written; 0: none.
  // (A budget, not a clock reading: the helper counts it from when it
  // reads the request.)
  std::int64_t deadline_ms = 0;
};

// The longest line either side accepts: a request or a record with a
// fault's backups named in it fits many times over; a peer sending more
// without a newline is broken, and the reader stops there.
inline constexpr std::size_t kMaxLineBytes = std::size_t{4} << 20;

std::string to_json(const HelperRequest &r);
// Throws std::invalid_argument naming the field.
HelperRequest request_from_json(const std::string &line);

// Splits a byte stream into lines of at most kMaxLineBytes (both sides read
// the protocol through it, the plugin also the helper's stderr).
class LineBuffer {
 public:
  explicit LineBuffer(std::size_t max_line = kMaxLineBytes) : max_(max_line) {}
  void append(const char *data, std::size_t len) { buf_.append(data, len); }
  // The next whole line without its newline; nullopt until one is there.
  // Throws std::length_error once more than max_line bytes wait without a
  // newline.
  std::optional<std::string> next();
  // What is left after the last newline (a peer that ended mid-line).
  const std::string &rest() const { return buf_; }

 private:
  std::size_t max_;
  std::string buf_;
};

// Writes all of `text` to the stream socket `fd`; false once the peer is
// gone (never SIGPIPE).
bool send_all(int fd, const std::string &text);
// One read of `fd` (retried on EINTR) appended to `buf`; false at end of
// file or on an error.
bool read_some(int fd, LineBuffer &buf);

}  // namespace blade::cri
