// SPDX-License-Identifier: Apache-2.0
//
// Blade plugin SDK: a host stand-in for unit-testing a plugin without the
// daemon. Header-only, C++20, depends on nothing but the C++ standard
// library, POSIX and <dlfcn.h> (link `dl` on glibc older than 2.34, and
// threads). Works for C and C++ plugins alike: it drives the plugin only
// through its entry function and the C ABI in blade/plugin.h.
//
//   #include <blade/plugin_test.hpp>
//   namespace bt = blade::sdk::testing;
//
//   bt::Host host(BLADE_PLUGIN_ENTRY);                 // plugin's sources linked into the test
//   // or: auto host = bt::Host::load("build/myplugin.so");   // dlopen'ed
//   bt::Instance &inst = host.start();                 // init; throws with its MESSAGE
//   bt::CallResult r = inst.create("cpu", "fullload", {{"cpu-count", "1"}});
//   assert(r.ok() && r.restore);                       // status OK, outputs JSON
//   host.restart();                                    // shutdown + a new init
//   assert(inst.destroy(r).ok());                      // the new instance undoes it
//   assert(inst.destroy(r).ok());                      // and again: idempotent
//
// What the stand-in does as bladed does:
//  - Validates the descriptor when the Host is made (ABI major, minor not
//    newer than the host's, struct_size, name, version, spec, required functions,
//    DRY_RUN capability vs the dry_run pointer, unknown capability bits) and
//    throws std::runtime_error naming the problem.
//  - set_output refuses RESULT, RESTORE and PLAN texts that are not JSON
//    (BLADE_STATUS_INVALID_ARGUMENT, the field's name lands in
//    CallResult::invalid_outputs, so CallResult::ok() is false), and a
//    destroy's RESULT (its report, ABI 1.4) that is not a JSON object. (For
//    a refused report bladed keeps the destroy's status and drops the
//    report; here ok() is false so that the plugin's bug shows in a test.)
//  - save_restore keeps the last record (also refused when not JSON);
//    outside create it returns BLADE_STATUS_FAILED_PRECONDITION.
//  - is_cancelled turns true when the test cancels (a CancelFlag, from any
//    thread), after a number of progress reports, after a delay, or once the
//    call's deadline passed; remaining_ms counts down to that deadline and
//    is INT64_MAX without one.
//  - host_info reports ABI 1.<Options::abi_minor>, a private state_dir (a temporary directory
//    created with the Host and removed with it; it survives restart()), the
//    test process's pid as daemon_pid, protected_paths (the Host's
//    temporary root plus Options::protected_paths) and config_json.
//  - fault_ended reports are kept, thread-safe, and can be waited for.
//  - Topics (ABI 1.5): Host::publish(topic, json) sets a topic's document
//    and hands it to its subscribers synchronously, in order, on the
//    publishing thread; subscribe delivers the current document before it
//    returns and answers 0 for a topic never published; unsubscribe waits
//    for a running delivery; subscriptions still open when the instance's
//    shutdown returns are ended. Host::subscribers(topic) counts them.
//    subscribe or unsubscribe from inside a delivery is recorded as misuse
//    (and refused) instead of deadlocking as it would in bladed.
//  - report_counters (ABI 1.5) checks the text with the rules bladed uses
//    (blade/counters.hpp), refuses a bad one keeping the last good report,
//    and keeps the last per uid (Host::counters, Host::wait_counters); a
//    create that fails and a destroy that succeeds forget the uid's.
//  - Options::abi_minor makes it an older host: a host API table and
//    host_info of that minor's size, without the newer functions, so a
//    plugin's fallbacks can be tested (e.g. 4: no topics, no counters).
// What it does not do: validate flags against the spec YAML or apply its
// defaults (pass every flag create needs; `bladed check-plugin` checks the
// spec), validate config_json against config_schema, persist anything
// across processes, or serialise calls (the test makes them).
#ifndef BLADE_PLUGIN_TEST_HPP
#define BLADE_PLUGIN_TEST_HPP

#include <blade/counters.hpp>
#include <blade/plugin.h>

#include <dirent.h>
#include <dlfcn.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

// The entry function of a plugin linked into the test program (from C or
// C++ sources), so that `Host host(BLADE_PLUGIN_ENTRY)` needs no declaration
// of its own. Only a test that uses it needs the plugin linked in.
extern "C" const blade_plugin_descriptor *BLADE_PLUGIN_ENTRY(void);

namespace blade::sdk::testing {

// True when `text` is one JSON value (RFC 8259 syntax, surrounding
// whitespace allowed) nesting no deeper than `max_depth` arrays/objects: the
// check bladed makes on RESULT, RESTORE, PLAN and save_restore records.
inline bool json_valid(std::string_view text, std::size_t max_depth = 64);

// The status's enum name without the prefix, e.g. "INVALID_ARGUMENT".
inline const char *status_name(blade_status status) {
  switch (status) {
    case BLADE_STATUS_OK: return "OK";
    case BLADE_STATUS_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case BLADE_STATUS_NOT_SUPPORTED: return "NOT_SUPPORTED";
    case BLADE_STATUS_PERMISSION_DENIED: return "PERMISSION_DENIED";
    case BLADE_STATUS_TIMEOUT: return "TIMEOUT";
    case BLADE_STATUS_CANCELLED: return "CANCELLED";
    case BLADE_STATUS_NOT_FOUND: return "NOT_FOUND";
    case BLADE_STATUS_ALREADY_EXISTS: return "ALREADY_EXISTS";
    case BLADE_STATUS_FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case BLADE_STATUS_INTERNAL: return "INTERNAL";
  }
  return "UNKNOWN";
}

// Flags as name/value pairs, in the order the plugin sees them. Booleans are
// "true"/"false", as bladed passes them.
using Flags = std::vector<std::pair<std::string, std::string>>;

// A cancellation switch shared between the test and a call: copies share
// one state, so a test keeps one copy, passes another in CallOptions and
// calls cancel() from any thread.
class CancelFlag {
 public:
  void cancel() noexcept { state_->store(true); }
  bool cancelled() const noexcept { return state_->load(); }

 private:
  std::shared_ptr<std::atomic<bool>> state_ = std::make_shared<std::atomic<bool>>(false);
};

// Per-call settings; every field is optional. Set fields directly or chain
// the with_* setters: inst.create(t, a, flags,
// CallOptions().with_deadline(std::chrono::seconds(2))). (Designated
// initializers also work, but GCC's -Wextra warns about the fields left out.)
struct CallOptions {
  // The call's deadline, counted from when it starts: remaining_ms counts
  // down to it and is_cancelled turns true once it passed.
  std::optional<std::chrono::milliseconds> deadline;
  // is_cancelled turns true once cancel() was called on this flag.
  std::optional<CancelFlag> cancel;
  // is_cancelled turns true once the plugin reported progress this many times.
  std::optional<int> cancel_after_progress;
  // is_cancelled turns true this long after the call started.
  std::optional<std::chrono::milliseconds> cancel_after;
  // The experiment's uid; empty: 16 fresh lowercase hex digits (create and
  // dry_run; destroy(CallResult) takes the create's).
  std::string uid;
  // The request's scope; empty: Options::scope.
  std::string scope;

  CallOptions &with_deadline(std::chrono::milliseconds d) { deadline = d; return *this; }
  CallOptions &with_cancel(CancelFlag f) { cancel = std::move(f); return *this; }
  CallOptions &with_cancel_after_progress(int n) { cancel_after_progress = n; return *this; }
  CallOptions &with_cancel_after(std::chrono::milliseconds d) { cancel_after = d; return *this; }
  CallOptions &with_uid(std::string u) { uid = std::move(u); return *this; }
  CallOptions &with_scope(std::string s) { scope = std::move(s); return *this; }
};

struct Progress {
  int percent = 0;
  std::string note;  // empty when the plugin passed NULL
};

// Everything one call handed back.
struct CallResult {
  blade_status status = BLADE_STATUS_INTERNAL;
  // The RESULT, MESSAGE and PLAN outputs; empty when not set. RESULT is
  // create's result, or in a destroy the destroy's report (ABI 1.4: a JSON
  // object saying what it found, e.g. that the fault was already gone).
  std::string result;
  std::string message;
  std::string plan;
  // The restore record bladed would keep for the experiment: the RESTORE
  // output, else the last save_restore record, else none (destroy then gets
  // a NULL restore_json).
  std::optional<std::string> restore;
  // Every save_restore record the call stored, in order.
  std::vector<std::string> saved_restores;
  std::vector<Progress> progress;
  // Names ("RESULT", "RESTORE", "PLAN") of outputs refused as not JSON.
  std::vector<std::string> invalid_outputs;
  // The request as sent, so destroy(CallResult) can repeat it.
  std::string uid;
  std::string scope;
  std::string target;
  std::string action;
  Flags flags;
  std::chrono::milliseconds elapsed{0};

  // Status OK and every output the plugin set was JSON.
  bool ok() const { return status == BLADE_STATUS_OK && invalid_outputs.empty(); }
  // "STATUS: message" for assertion messages.
  std::string describe() const {
    std::string out = status_name(status);
    if (!message.empty()) out += ": " + message;
    for (const auto &field : invalid_outputs) out += " [" + field + " output was not JSON]";
    return out;
  }
};

struct LogLine {
  blade_log_level level = BLADE_LOG_INFO;
  std::string message;
};

struct FaultEnded {
  std::string uid;
  std::string reason;
};

// Settings of the stand-in host.
struct Options {
  std::string host_version = "0.0.0-test";
  // host_info.config_json: the plugin's configuration section (must be a
  // JSON object; not checked against the plugin's config_schema).
  std::string config_json = "{}";
  // Added to host_info.protected_paths after the Host's temporary root.
  std::vector<std::string> protected_paths;
  // The default scope of requests.
  std::string scope = "host";
  // Where the temporary root (holding state_dir) is made; empty: $TMPDIR or /tmp.
  std::string temp_parent;
  // The ABI minor the stand-in speaks, 0..BLADE_PLUGIN_ABI_MINOR: the host
  // API table and host_info are cut to that minor's fields, and a plugin
  // needing a newer minor is refused, as an older bladed would.
  std::uint16_t abi_minor = BLADE_PLUGIN_ABI_MINOR;
};

// A temporary directory (blade-plugin-test-XXXXXX under `parent`, $TMPDIR
// or /tmp), removed with everything in it when destroyed. The Host makes
// one for state_dir; tests use it for the files their faults touch.
class TempDir {
 public:
  explicit TempDir(const std::string &parent = "") {
    std::string base = parent;
    if (base.empty()) {
      const char *env = std::getenv("TMPDIR");
      base = env && *env ? env : "/tmp";
    }
    std::string pattern = base + "/blade-plugin-test-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data()))
      throw std::runtime_error("cannot create a temporary directory under " + base + ": " +
                               std::strerror(errno));
    path_ = buf.data();
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  ~TempDir() {
    // Depth-first, without following symlinks or leaving the file system.
    ::nftw(
        path_.c_str(),
        [](const char *p, const struct stat *, int, struct FTW *) {
          ::remove(p);  // best effort: a leftover must not fail the test's teardown
          return 0;
        },
        16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
  }
  const std::string &path() const { return path_; }

 private:
  std::string path_;
};

// File-system checks for a fault's effect, which tests check for real.
// True when something (even a dangling symlink) is at `path`.
inline bool path_exists(const std::string &path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}
// The file's bytes; empty when it cannot be read.
inline std::string read_file(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
// The names in `dir` without "." and "..", sorted; empty when it cannot be read.
inline std::vector<std::string> list_dir(const std::string &dir) {
  std::vector<std::string> names;
  if (DIR *d = ::opendir(dir.c_str())) {
    while (const dirent *e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

class Host;
class Instance;

namespace detail {

class JsonChecker {
 public:
  JsonChecker(std::string_view text, std::size_t max_depth) : s_(text), max_depth_(max_depth) {}

  bool run() {
    skip_ws();
    if (!value(0)) return false;
    skip_ws();
    return i_ == s_.size();
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
  std::size_t max_depth_;

  bool at_end() const { return i_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[i_]; }
  void skip_ws() {
    while (!at_end() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }
  static bool digit(char c) { return c >= '0' && c <= '9'; }
  static bool hex(char c) {
    return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  }
  bool digits() {
    if (!digit(peek())) return false;
    while (digit(peek())) ++i_;
    return true;
  }
  bool number() {
    if (peek() == '-') ++i_;
    if (peek() == '0') {
      ++i_;
    } else if (!digits()) {
      return false;
    }
    if (peek() == '.') {
      ++i_;
      if (!digits()) return false;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++i_;
      if (peek() == '+' || peek() == '-') ++i_;
      if (!digits()) return false;
    }
    return true;
  }
  // Strings: no raw control characters, only the escapes JSON defines, and
  // well-formed UTF-8 is not checked (bladed stores the bytes as given).
  bool string() {
    if (peek() != '"') return false;
    ++i_;
    while (!at_end()) {
      unsigned char c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;
      if (c != '\\') continue;
      if (at_end()) return false;
      char e = s_[i_++];
      if (e == 'u') {
        for (int k = 0; k < 4; ++k)
          if (at_end() || !hex(s_[i_++])) return false;
      } else if (std::strchr("\"\\/bfnrt", e) == nullptr || e == '\0') {
        return false;
      }
    }
    return false;
  }
  bool value(std::size_t depth) {
    switch (peek()) {
      case '{': return container(depth, '}', true);
      case '[': return container(depth, ']', false);
      case '"': return string();
      case 't': return literal("true");
      case 'f': return literal("false");
      case 'n': return literal("null");
      default: return number();
    }
  }
  bool container(std::size_t depth, char close, bool object) {
    if (depth + 1 > max_depth_) return false;
    ++i_;
    skip_ws();
    if (peek() == close) {
      ++i_;
      return true;
    }
    for (;;) {
      skip_ws();
      if (object) {
        if (!string()) return false;
        skip_ws();
        if (peek() != ':') return false;
        ++i_;
        skip_ws();
      }
      if (!value(depth + 1)) return false;
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() != close) return false;
      ++i_;
      return true;
    }
  }
};

inline std::string fresh_uid() {
  static std::mutex mu;
  static std::mt19937_64 gen{std::random_device{}()};
  std::lock_guard lock(mu);
  std::uint64_t v = gen();
  static const char digits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int k = 15; k >= 0; --k, v >>= 4) out[static_cast<std::size_t>(k)] = digits[v & 0xf];
  return out;
}

inline bool is_uid(std::string_view uid) {
  if (uid.size() != 16) return false;
  for (char c : uid)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// What the Host keeps for all its instances; its address never changes, as
// the plugin holds it (as blade_host*) for the instance's life.
struct HostState {
  blade_plugin_entry_fn entry = nullptr;
  const blade_plugin_descriptor *desc = nullptr;
  Options options;
  std::unique_ptr<TempDir> root;
  std::string state_dir;
  std::vector<std::string> protected_paths;
  std::vector<const char *> protected_ptrs;
  std::string config_json;
  blade_host_info info{};
  blade_host_api api{};  // kHostApi cut to Options::abi_minor

  mutable std::mutex mu;
  std::condition_variable changed;
  std::vector<LogLine> logs;
  std::vector<FaultEnded> ended;
  std::vector<std::string> violations;
  std::vector<std::string> known_uids;
  std::map<std::string, std::string> counters;  // uid -> last good report (guarded by mu)

  // Topics (ABI 1.5). deliver_mu is held while documents are handed out, so
  // one subscription's calls never overlap and unsubscribe waits for a
  // running one; `delivering` names the thread doing it, to catch a
  // subscriber that calls back in.
  struct Subscriber {
    std::string topic;
    blade_topic_fn fn = nullptr;
    void *ctx = nullptr;
  };
  mutable std::mutex deliver_mu;
  std::atomic<std::thread::id> delivering{};
  std::map<std::string, std::string> topics;   // topic -> current document
  std::map<std::uint64_t, Subscriber> subscribers;
  std::uint64_t next_subscription = 1;

  void violation(std::string what) {
    std::lock_guard lock(mu);
    violations.push_back(std::move(what));
  }
  // Hands `doc` to the topic's subscribers in id order; deliver_mu held.
  void deliver(const std::string &topic, const std::string &doc) {
    delivering = std::this_thread::get_id();
    for (const auto &[id, sub] : subscribers)
      if (sub.topic == topic) sub.fn(sub.ctx, topic.c_str(), doc.data(), doc.size());
    delivering = std::thread::id();
  }
  // Ends every subscription (the host's duty once shutdown returned).
  void end_subscriptions() {
    std::lock_guard lock(deliver_mu);
    subscribers.clear();
  }
};

// One call in flight; the plugin holds it as blade_call*.
struct CallState {
  HostState *host = nullptr;
  CallResult *out = nullptr;
  bool in_create = false;
  bool in_destroy = false;  // RESULT is the destroy's report: a JSON object
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> deadline;
  std::optional<std::chrono::steady_clock::time_point> cancel_at;
  std::optional<CancelFlag> cancel;
  int cancel_after_progress = -1;
  // Call-scoped callbacks may come from plugin threads during the call.
  std::mutex mu;
};

inline HostState *host_of(blade_host *h) { return reinterpret_cast<HostState *>(h); }
inline CallState *call_of(blade_call *c) { return reinterpret_cast<CallState *>(c); }

inline void api_log(blade_host *h, blade_log_level level, const char *message) {
  if (!h) return;
  HostState *s = host_of(h);
  std::lock_guard lock(s->mu);
  s->logs.push_back({level, message ? message : ""});
}

inline const blade_host_info *api_host_info(blade_host *h) { return h ? &host_of(h)->info : nullptr; }

inline bool is_json_object(std::string_view text);  // defined after json_valid

inline blade_status api_set_output(blade_call *c, blade_output_field field, const char *data,
                                   size_t len) {
  if (!c || (!data && len > 0)) return BLADE_STATUS_INVALID_ARGUMENT;
  CallState *call = call_of(c);
  std::string text(data ? data : "", len);
  std::lock_guard lock(call->mu);
  CallResult &out = *call->out;
  const char *name = nullptr;
  switch (field) {
    case BLADE_OUTPUT_MESSAGE: out.message = std::move(text); return BLADE_STATUS_OK;
    case BLADE_OUTPUT_RESULT: name = "RESULT"; break;
    case BLADE_OUTPUT_RESTORE: name = "RESTORE"; break;
    case BLADE_OUTPUT_PLAN: name = "PLAN"; break;
    default:
      call->host->violation("set_output with unknown field " + std::to_string(static_cast<int>(field)));
      return BLADE_STATUS_INVALID_ARGUMENT;
  }
  const bool report = field == BLADE_OUTPUT_RESULT && call->in_destroy;
  if (report ? !is_json_object(text) : !json_valid(text)) {
    out.invalid_outputs.emplace_back(name);
    return BLADE_STATUS_INVALID_ARGUMENT;
  }
  if (field == BLADE_OUTPUT_RESULT) out.result = std::move(text);
  if (field == BLADE_OUTPUT_RESTORE) out.restore = std::move(text);
  if (field == BLADE_OUTPUT_PLAN) out.plan = std::move(text);
  return BLADE_STATUS_OK;
}

inline int api_is_cancelled(blade_call *c) {
  if (!c) return 0;
  CallState *call = call_of(c);
  auto now = std::chrono::steady_clock::now();
  if (call->cancel && call->cancel->cancelled()) return 1;
  if (call->deadline && now >= *call->deadline) return 1;
  if (call->cancel_at && now >= *call->cancel_at) return 1;
  if (call->cancel_after_progress >= 0) {
    std::lock_guard lock(call->mu);
    if (static_cast<int>(call->out->progress.size()) >= call->cancel_after_progress) return 1;
  }
  return 0;
}

inline int64_t api_remaining_ms(blade_call *c) {
  if (!c || !call_of(c)->deadline) return INT64_MAX;
  return std::chrono::duration_cast<std::chrono::milliseconds>(*call_of(c)->deadline -
                                                               std::chrono::steady_clock::now())
      .count();
}

inline void api_progress(blade_call *c, int32_t percent, const char *note) {
  if (!c) return;
  CallState *call = call_of(c);
  if (percent < 0 || percent > 100)
    call->host->violation("progress " + std::to_string(percent) + " is outside 0..100");
  std::lock_guard lock(call->mu);
  call->out->progress.push_back({static_cast<int>(percent), note ? note : ""});
}

inline void api_fault_ended(blade_host *h, const char *uid, const char *reason) {
  if (!h) return;
  HostState *s = host_of(h);
  std::string id = uid ? uid : "";
  {
    std::lock_guard lock(s->mu);
    bool known = false;
    for (const auto &k : s->known_uids) known = known || k == id;
    if (!known) s->violations.push_back("fault_ended for uid '" + id + "', which no create used");
    s->ended.push_back({id, reason ? reason : ""});
  }
  s->changed.notify_all();
}

inline blade_status api_save_restore(blade_call *c, const char *json, size_t len) {
  if (!c || (!json && len > 0)) return BLADE_STATUS_INVALID_ARGUMENT;
  CallState *call = call_of(c);
  if (!call->in_create) {
    call->host->violation("save_restore outside create");
    return BLADE_STATUS_FAILED_PRECONDITION;
  }
  std::string text(json ? json : "", len);
  if (!json_valid(text)) return BLADE_STATUS_INVALID_ARGUMENT;
  std::lock_guard lock(call->mu);
  call->out->saved_restores.push_back(text);
  call->out->restore = std::move(text);
  return BLADE_STATUS_OK;
}

inline uint64_t api_subscribe(blade_host *h, const char *topic, blade_topic_fn fn, void *ctx) {
  if (!h || !topic || !fn) return 0;
  HostState *s = host_of(h);
  if (s->delivering.load() == std::this_thread::get_id()) {
    s->violation(std::string("subscribe to '") + topic + "' from inside a topic delivery");
    return 0;
  }
  std::lock_guard lock(s->deliver_mu);
  auto doc = s->topics.find(topic);
  if (doc == s->topics.end()) return 0;  // bladed knows only topics it publishes
  const std::uint64_t id = s->next_subscription++;
  s->subscribers[id] = {topic, fn, ctx};
  // The current document first, under the same lock as publishes, so no
  // later document can overtake it.
  s->delivering = std::this_thread::get_id();
  fn(ctx, topic, doc->second.data(), doc->second.size());
  s->delivering = std::thread::id();
  return id;
}

inline void api_unsubscribe(blade_host *h, uint64_t id) {
  if (!h) return;
  HostState *s = host_of(h);
  if (s->delivering.load() == std::this_thread::get_id()) {
    s->violation("unsubscribe " + std::to_string(id) + " from inside a topic delivery");
    return;
  }
  std::lock_guard lock(s->deliver_mu);  // waits for a delivery in progress
  s->subscribers.erase(id);
}

inline blade_status api_report_counters(blade_host *h, const char *uid, const char *json,
                                        size_t len) {
  if (!h || !uid || (!json && len > 0)) return BLADE_STATUS_INVALID_ARGUMENT;
  HostState *s = host_of(h);
  std::string id = uid;
  std::string text(json ? json : "", len);
  CountersParse parsed = parse_counters(text);
  {
    std::lock_guard lock(s->mu);
    if (std::find(s->known_uids.begin(), s->known_uids.end(), id) == s->known_uids.end())
      s->violations.push_back("report_counters for uid '" + id + "', which no create used");
    if (!parsed.ok()) {
      s->violations.push_back("report_counters for uid '" + id + "' refused: " + parsed.error);
      return BLADE_STATUS_INVALID_ARGUMENT;
    }
    s->counters[id] = std::move(text);
  }
  s->changed.notify_all();
  return BLADE_STATUS_OK;
}

// The full table; each Host serves a copy cut to its Options::abi_minor.
inline constexpr blade_host_api kHostApi = {
    sizeof(blade_host_api), BLADE_PLUGIN_ABI_MAJOR, BLADE_PLUGIN_ABI_MINOR,
    &api_log,           &api_host_info,         &api_set_output,
    &api_is_cancelled,  &api_remaining_ms,      &api_progress,
    &api_fault_ended,   &api_save_restore,      &api_subscribe,
    &api_unsubscribe,   &api_report_counters,
};

// The size of the host API table and of host_info in ABI 1.`minor`: each
// ends after the last field that minor added.
inline std::uint32_t host_api_size(std::uint16_t minor) {
  if (minor >= 5) return sizeof(blade_host_api);
  if (minor >= 2) return offsetof(blade_host_api, subscribe);
  if (minor == 1) return offsetof(blade_host_api, save_restore);
  return offsetof(blade_host_api, fault_ended);
}
inline std::uint32_t host_info_size(std::uint16_t minor) {
  if (minor >= 3) return sizeof(blade_host_info);
  if (minor == 2) return offsetof(blade_host_info, config_json);
  return offsetof(blade_host_info, protected_paths);
}

// kHostApi as a host of ABI 1.`minor` has it: the fields that minor does
// not know are outside struct_size and NULL.
inline blade_host_api host_api_for(std::uint16_t minor) {
  blade_host_api api = kHostApi;
  api.abi_minor = minor;
  api.struct_size = host_api_size(minor);
  if (minor < 1) api.fault_ended = nullptr;
  if (minor < 2) api.save_restore = nullptr;
  if (minor < 5) {
    api.subscribe = nullptr;
    api.unsubscribe = nullptr;
    api.report_counters = nullptr;
  }
  return api;
}

// The checks bladed's loader makes; throws naming the first that fails.
inline void validate_descriptor(const blade_plugin_descriptor *d,
                                std::uint16_t host_minor = BLADE_PLUGIN_ABI_MINOR) {
  auto refuse = [](const std::string &why) {
    throw std::runtime_error("plugin descriptor refused: " + why);
  };
  if (!d) refuse("the entry function returned NULL");
  if (d->abi_major != BLADE_PLUGIN_ABI_MAJOR)
    refuse("ABI major " + std::to_string(d->abi_major) + ", the host's is " +
           std::to_string(BLADE_PLUGIN_ABI_MAJOR));
  if (d->abi_minor > host_minor)
    refuse("needs ABI minor " + std::to_string(d->abi_minor) + ", newer than the host's " +
           std::to_string(host_minor));
  const std::size_t minor0_size = offsetof(blade_plugin_descriptor, dry_run) + sizeof(d->dry_run);
  if (d->struct_size < minor0_size)
    refuse("struct_size " + std::to_string(d->struct_size) + " is smaller than ABI 1.0's " +
           std::to_string(minor0_size));
  std::string_view name = d->name ? d->name : "";
  bool name_ok = !name.empty() && name.size() <= 64;
  for (char c : name)
    name_ok = name_ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-');
  if (!name_ok) refuse("invalid name '" + std::string(name) + "': use [a-z0-9_-], at most 64");
  if (!d->version || !*d->version) refuse("no version");
  if (!d->spec_yaml || !*d->spec_yaml) refuse("no spec YAML");
  if (!d->init || !d->shutdown || !d->create || !d->destroy)
    refuse("a required function (init, shutdown, create, destroy) is NULL");
  // As a host of that minor: one before 1.6 does not know WRITES_AHEAD.
  std::uint64_t known = BLADE_CAP_DRY_RUN | BLADE_CAP_CONCURRENT_CALLS;
  if (host_minor >= 6) known |= BLADE_CAP_WRITES_AHEAD;
  if (d->capabilities & ~known) refuse("unknown capability bits");
  bool says_dry_run = (d->capabilities & BLADE_CAP_DRY_RUN) != 0;
  if (says_dry_run != (d->dry_run != nullptr))
    refuse(says_dry_run ? "capability DRY_RUN is set but dry_run is NULL"
                        : "dry_run is set but capability DRY_RUN is not");
}

struct LibraryCloser {
  void operator()(void *handle) const {
    if (handle) ::dlclose(handle);
  }
};

}  // namespace detail

inline bool json_valid(std::string_view text, std::size_t max_depth) {
  return detail::JsonChecker(text, max_depth).run();
}

namespace detail {
inline bool is_json_object(std::string_view text) {
  auto first = text.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && text[first] == '{' && json_valid(text);
}
}  // namespace detail

// One plugin instance (one init). Made by Host::start(); the object stays
// the same across Host::restart(), which swaps the plugin instance behind
// it for a fresh one, so a reference taken from start() stays usable.
class Instance {
 public:
  Instance(const Instance &) = delete;
  Instance &operator=(const Instance &) = delete;
  ~Instance() { shutdown(); }

  // create(target, action, flags): the plugin's create. The uid is fresh
  // unless opts.uid is set.
  CallResult create(std::string target, std::string action, Flags flags = {},
                    const CallOptions &opts = {}) {
    return call(Kind::Create, std::move(target), std::move(action), std::move(flags), opts, nullptr);
  }
  // The plugin's dry_run; throws std::logic_error when it has none.
  CallResult dry_run(std::string target, std::string action, Flags flags = {},
                     const CallOptions &opts = {}) {
    if (!state_->desc->dry_run) throw std::logic_error("the plugin has no dry_run");
    return call(Kind::DryRun, std::move(target), std::move(action), std::move(flags), opts, nullptr);
  }
  // Destroys what `created` made: same uid, scope, target, action and flags,
  // with its restore record (the RESTORE output, or the last save_restore
  // record when create failed or was cancelled; NULL when there was none),
  // as bladed does, also after a restart.
  CallResult destroy(const CallResult &created, CallOptions opts = {}) {
    opts.uid = created.uid;
    opts.scope = created.scope;
    const std::string *restore = created.restore ? &*created.restore : nullptr;
    return call(Kind::Destroy, created.target, created.action, created.flags, opts, restore);
  }
  // A destroy spelled out, e.g. for a record from an older plugin version;
  // opts.uid must be set. restore_json nullopt passes NULL.
  CallResult destroy(std::string target, std::string action, Flags flags,
                     std::optional<std::string> restore_json, const CallOptions &opts) {
    if (opts.uid.empty()) throw std::invalid_argument("destroy needs CallOptions::uid");
    return call(Kind::Destroy, std::move(target), std::move(action), std::move(flags), opts,
                restore_json ? &*restore_json : nullptr);
  }

  // How many times init ran on this object (1 after start, +1 per restart).
  int generation() const { return generation_; }
  bool running() const { return instance_ != nullptr; }

 private:
  friend class Host;
  enum class Kind { Create, Destroy, DryRun };

  explicit Instance(detail::HostState *state) : state_(state) {}

  // init; on failure throws std::runtime_error with the plugin's MESSAGE.
  void init() {
    CallResult out;
    detail::CallState call;
    call.host = state_;
    call.out = &out;
    blade_instance *made = nullptr;
    blade_status s = state_->desc->init(&state_->api, reinterpret_cast<blade_host *>(state_),
                                        reinterpret_cast<blade_call *>(&call), &made);
    out.status = s;
    if (s != BLADE_STATUS_OK || !made) {
      if (made) state_->desc->shutdown(made);  // a plugin bug; do not leak it
      state_->end_subscriptions();             // what a failed init left open
      throw std::runtime_error("plugin init failed: " +
                               (s == BLADE_STATUS_OK ? std::string("OK but no instance") : out.describe()));
    }
    instance_ = made;
    ++generation_;
  }

  void shutdown() noexcept {
    if (instance_) state_->desc->shutdown(instance_);
    instance_ = nullptr;
    // As bladed: every subscription still open ends once shutdown returned.
    state_->end_subscriptions();
  }

  CallResult call(Kind kind, std::string target, std::string action, Flags flags,
                  const CallOptions &opts, const std::string *restore) {
    if (!instance_) throw std::logic_error("the plugin instance is not running (start() it)");
    CallResult out;
    out.uid = opts.uid.empty() ? detail::fresh_uid() : opts.uid;
    out.scope = opts.scope.empty() ? state_->options.scope : opts.scope;
    out.target = std::move(target);
    out.action = std::move(action);
    out.flags = std::move(flags);
    if (!detail::is_uid(out.uid))
      throw std::invalid_argument("uid '" + out.uid + "' is not 16 lowercase hex digits");
    if (kind == Kind::Create) {
      std::lock_guard lock(state_->mu);
      state_->known_uids.push_back(out.uid);
    }

    std::vector<const char *> names, values;
    for (const auto &[n, v] : out.flags) {
      names.push_back(n.c_str());
      values.push_back(v.c_str());
    }
    blade_request req{};
    req.struct_size = sizeof(blade_request);
    req.flag_count = static_cast<std::uint32_t>(out.flags.size());
    req.uid = out.uid.c_str();
    req.scope = out.scope.c_str();
    req.target = out.target.c_str();
    req.action = out.action.c_str();
    req.flag_names = names.data();
    req.flag_values = values.data();
    req.restore_json = restore ? restore->c_str() : nullptr;

    detail::CallState call;
    call.host = state_;
    call.out = &out;
    call.in_create = kind == Kind::Create;
    call.in_destroy = kind == Kind::Destroy;
    if (opts.deadline) call.deadline = call.started + *opts.deadline;
    if (opts.cancel_after) call.cancel_at = call.started + *opts.cancel_after;
    call.cancel = opts.cancel;
    if (opts.cancel_after_progress) call.cancel_after_progress = *opts.cancel_after_progress;

    auto *c = reinterpret_cast<blade_call *>(&call);
    const blade_plugin_descriptor *d = state_->desc;
    blade_status s = kind == Kind::Create    ? d->create(instance_, &req, c)
                     : kind == Kind::Destroy ? d->destroy(instance_, &req, c)
                                             : d->dry_run(instance_, &req, c);
    {
      std::lock_guard lock(call.mu);  // plugin threads may still be finishing a callback
      out.status = s;
      out.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - call.started);
    }
    // As bladed: live counters go with a fault that is gone (a destroy that
    // succeeded) or never was (a create that failed).
    if ((kind == Kind::Destroy && s == BLADE_STATUS_OK) || (kind == Kind::Create && !out.ok())) {
      std::lock_guard lock(state_->mu);
      state_->counters.erase(out.uid);
    }
    return out;
  }

  detail::HostState *state_;
  blade_instance *instance_ = nullptr;
  int generation_ = 0;
};

// The stand-in daemon for one plugin. Movable, not copyable. Destroying it
// shuts the instance down, removes the temporary state dir and, for load(),
// closes the library.
class Host {
 public:
  // For a plugin linked into the test: Host host(BLADE_PLUGIN_ENTRY).
  // Throws std::runtime_error when the descriptor would be refused.
  explicit Host(blade_plugin_entry_fn entry, Options opts = {})
      : state_(std::make_unique<detail::HostState>()) {
    if (!entry) throw std::invalid_argument("entry function is NULL");
    if (opts.abi_minor > BLADE_PLUGIN_ABI_MINOR)
      throw std::invalid_argument("Options::abi_minor " + std::to_string(opts.abi_minor) +
                                  " is newer than this SDK's " +
                                  std::to_string(BLADE_PLUGIN_ABI_MINOR));
    const blade_plugin_descriptor *d = entry();
    detail::validate_descriptor(d, opts.abi_minor);
    if (!detail::is_json_object(opts.config_json))
      throw std::invalid_argument("Options::config_json is not a JSON object");
    state_->entry = entry;
    state_->desc = d;
    state_->root = std::make_unique<TempDir>(opts.temp_parent);
    state_->state_dir = state_->root->path() + "/state";
    if (::mkdir(state_->state_dir.c_str(), 0700) != 0)
      throw std::runtime_error("cannot create " + state_->state_dir + ": " + std::strerror(errno));
    state_->protected_paths.push_back(state_->root->path());
    for (const auto &p : opts.protected_paths) state_->protected_paths.push_back(p);
    for (const auto &p : state_->protected_paths) state_->protected_ptrs.push_back(p.c_str());
    state_->protected_ptrs.push_back(nullptr);
    state_->config_json = opts.config_json;
    state_->options = std::move(opts);

    state_->api = detail::host_api_for(state_->options.abi_minor);
    blade_host_info &i = state_->info;
    i.struct_size = detail::host_info_size(state_->options.abi_minor);
    i.abi_major = BLADE_PLUGIN_ABI_MAJOR;
    i.abi_minor = state_->options.abi_minor;
    i.host_version = state_->options.host_version.c_str();
    i.state_dir = state_->state_dir.c_str();
    i.daemon_pid = static_cast<std::int32_t>(::getpid());
    i.reserved = 0;
    // Fields past struct_size stay NULL, as an older host has none there.
    i.protected_paths = state_->options.abi_minor >= 2 ? state_->protected_ptrs.data() : nullptr;
    i.config_json = state_->options.abi_minor >= 3 ? state_->config_json.c_str() : nullptr;
  }

  // For a built .so: dlopens `path` (RTLD_NOW | RTLD_LOCAL), finds
  // blade_plugin_entry_v1 and keeps the library open for the Host's life.
  // Throws std::runtime_error with dlerror()'s text when it cannot.
  static Host load(const std::string &path, Options opts = {}) {
    ::dlerror();
    std::unique_ptr<void, detail::LibraryCloser> lib(::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL));
    if (!lib) {
      const char *err = ::dlerror();
      throw std::runtime_error("cannot load " + path + ": " + (err ? err : "unknown error"));
    }
    void *sym = ::dlsym(lib.get(), BLADE_PLUGIN_ENTRY_NAME);
    if (!sym) throw std::runtime_error(path + " does not export " BLADE_PLUGIN_ENTRY_NAME);
    blade_plugin_entry_fn entry;
    static_assert(sizeof entry == sizeof sym);
    std::memcpy(&entry, &sym, sizeof entry);  // object to function pointer, as POSIX allows
    Host host(entry, std::move(opts));
    host.library_ = std::move(lib);
    return host;
  }

  Host(Host &&) noexcept = default;
  Host &operator=(Host &&) = delete;
  ~Host() {
    // The instance goes before the state dir and the library it runs from.
    instance_.reset();
    state_.reset();
  }

  // Calls init and returns the instance; throws std::runtime_error carrying
  // the plugin's MESSAGE when init fails, std::logic_error when running.
  Instance &start() {
    if (instance_ && instance_->running()) throw std::logic_error("the instance is already running");
    if (!instance_) instance_.reset(new Instance(state_.get()));
    instance_->init();
    return *instance_;
  }
  // Shuts the instance down (faults not destroyed stay, as in the daemon).
  void stop() {
    if (instance_) instance_->shutdown();
  }
  // A daemon restart: shutdown, then init of a new plugin instance behind
  // the same Instance object. Only what a CallResult holds carries over, as
  // only the store survives a real restart.
  Instance &restart() {
    stop();
    return start();
  }
  // Replaces host_info.config_json for the next start()/restart().
  void set_config_json(std::string json) {
    if (!detail::is_json_object(json))
      throw std::invalid_argument("config_json is not a JSON object");
    if (instance_ && instance_->running())
      throw std::logic_error("set_config_json while the instance runs; stop() first");
    state_->config_json = std::move(json);
    if (state_->options.abi_minor >= 3) state_->info.config_json = state_->config_json.c_str();
  }

  const blade_plugin_descriptor &descriptor() const { return *state_->desc; }
  const blade_host_info &host_info() const { return state_->info; }
  // host_info().state_dir, the plugin's private directory.
  const std::string &state_dir() const { return state_->state_dir; }

  // Every log line so far, in order (copies: plugin threads may add more).
  std::vector<LogLine> logs() const {
    std::lock_guard lock(state_->mu);
    return state_->logs;
  }
  // True when a log line contains `text`.
  bool logged(std::string_view text) const {
    std::lock_guard lock(state_->mu);
    for (const auto &l : state_->logs)
      if (l.message.find(text) != std::string::npos) return true;
    return false;
  }
  std::vector<FaultEnded> fault_ended_reports() const {
    std::lock_guard lock(state_->mu);
    return state_->ended;
  }
  // Waits up to `timeout` for a fault_ended report for `uid` (empty: any)
  // and returns the first such report, or nullopt on timeout.
  std::optional<FaultEnded> wait_fault_ended(const std::string &uid,
                                             std::chrono::milliseconds timeout) const {
    std::unique_lock lock(state_->mu);
    std::optional<FaultEnded> found;
    state_->changed.wait_for(lock, timeout, [&] {
      for (const auto &e : state_->ended)
        if (uid.empty() || e.uid == uid) {
          found = e;
          return true;
        }
      return false;
    });
    return found;
  }
  // Topics (ABI 1.5): makes `json` the topic's document (declaring the
  // topic on first use, so plugins may then subscribe to it) and hands it
  // to every subscriber before returning, as bladed does when a policy
  // changes. Throws std::invalid_argument when `json` is not JSON. Must not
  // be called from inside a delivery.
  void publish(const std::string &topic, std::string json) {
    if (!json_valid(json)) throw std::invalid_argument("publish: the document is not JSON");
    std::lock_guard lock(state_->deliver_mu);
    std::string &doc = state_->topics[topic];
    doc = std::move(json);
    state_->deliver(topic, doc);
  }
  // Subscriptions open on `topic` (0 once the plugin ended them all).
  std::size_t subscribers(const std::string &topic) const {
    std::lock_guard lock(state_->deliver_mu);
    std::size_t n = 0;
    for (const auto &[id, sub] : state_->subscribers) n += sub.topic == topic ? 1 : 0;
    return n;
  }
  // The last counters report accepted for `uid` (ABI 1.5), as sent; nullopt
  // when there is none (never reported, or forgotten at destroy).
  std::optional<std::string> counters(const std::string &uid) const {
    std::lock_guard lock(state_->mu);
    auto it = state_->counters.find(uid);
    if (it == state_->counters.end()) return std::nullopt;
    return it->second;
  }
  // Waits up to `timeout` for a counters report for `uid` that `until`
  // accepts (any report when `until` is empty); returns it, or nullopt.
  std::optional<std::string> wait_counters(
      const std::string &uid, std::chrono::milliseconds timeout,
      const std::function<bool(const std::string &json)> &until = {}) const {
    std::unique_lock lock(state_->mu);
    std::optional<std::string> found;
    state_->changed.wait_for(lock, timeout, [&] {
      auto it = state_->counters.find(uid);
      if (it == state_->counters.end() || (until && !until(it->second))) return false;
      found = it->second;
      return true;
    });
    return found;
  }

  // Misuses of the host API seen so far: save_restore outside create,
  // progress outside 0..100, an unknown output field, fault_ended or
  // report_counters for a uid no create used, a counters report refused,
  // subscribe or unsubscribe from inside a delivery. A well-behaved plugin
  // leaves this empty.
  std::vector<std::string> violations() const {
    std::lock_guard lock(state_->mu);
    return state_->violations;
  }

 private:
  // Declared first, destroyed last: the code of a dlopen'ed plugin stays
  // mapped until its instance and state are gone.
  std::unique_ptr<void, detail::LibraryCloser> library_;
  std::unique_ptr<detail::HostState> state_;
  std::unique_ptr<Instance> instance_;
};

// A test main without a framework (doctest, gtest, ... work as well):
//
//   void create_then_destroy() { ...; BLADE_TEST_CHECK(r.ok(), r.describe()); }
//   int main() { return blade::sdk::testing::run_tests({{"create then destroy", create_then_destroy}}); }
//
// A failed check prints file:line, the expression and the detail to stderr
// and the test goes on; an exception ends the test case as failed.
struct TestCase {
  const char *name;
  void (*body)();
};

namespace detail {
inline int &failed_checks() {
  static int count = 0;
  return count;
}
}  // namespace detail

inline bool check(bool ok, const char *expr, const std::string &detail, const char *file, int line) {
  if (!ok) {
    ++detail::failed_checks();
    std::fprintf(stderr, "%s:%d: check failed: %s%s%s\n", file, line, expr,
                 detail.empty() ? "" : " -- ", detail.c_str());
  }
  return ok;
}

// Runs every case, prints one "ok"/"FAILED" line per case, and returns the
// process exit code: 0 when every check passed, 1 otherwise.
inline int run_tests(std::initializer_list<TestCase> cases) {
  int failed_cases = 0;
  for (const TestCase &t : cases) {
    int before = detail::failed_checks();
    try {
      t.body();
    } catch (const std::exception &e) {
      check(false, "no exception", e.what(), t.name, 0);
    } catch (...) {
      check(false, "no exception", "unknown exception", t.name, 0);
    }
    bool ok = detail::failed_checks() == before;
    failed_cases += ok ? 0 : 1;
    std::printf("%s %s\n", ok ? "ok    " : "FAILED", t.name);
  }
  std::printf("%zu test cases, %d failed\n", cases.size(), failed_cases);
  return failed_cases == 0 ? 0 : 1;
}

}  // namespace blade::sdk::testing

// BLADE_TEST_CHECK(condition) or BLADE_TEST_CHECK(condition, detail-string).
#define BLADE_TEST_CHECK(cond, ...) \
  ::blade::sdk::testing::check(static_cast<bool>(cond), #cond, std::string(__VA_ARGS__), __FILE__, __LINE__)

#endif  // BLADE_PLUGIN_TEST_HPP
