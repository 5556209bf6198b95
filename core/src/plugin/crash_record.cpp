#include "blade/core/plugin/crash_record.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <fstream>
#include <sstream>

namespace blade {
namespace {

// Fixed-size copies: the handler may read only plain memory.
struct CallSlot {
  bool active = false;
  char plugin[64] = {};
  char op[16] = {};
  char uid[40] = {};
};

thread_local CallSlot current_call;
char record_path[4096] = {};

void copy_into(char *dst, std::size_t size, std::string_view src) {
  std::size_t n = std::min(size - 1, src.size());
  std::memcpy(dst, src.data(), n);
  dst[n] = '\0';
}

// Appends `s` to buf at *len, never past cap (async-signal-safe).
void append(char *buf, std::size_t cap, std::size_t *len, const char *s) {
  while (*s && *len + 1 < cap)
    buf[(*len)++] = *s++;
  buf[*len] = '\0';
}

void append_int(char *buf, std::size_t cap, std::size_t *len, int v) {
  char digits[16];
  int n = 0;
  unsigned u = v < 0 ? 0u : static_cast<unsigned>(v);
  do {
    digits[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u && n < 15);
  char out[16];
  for (int i = 0; i < n; ++i)
    out[i] = digits[n - 1 - i];
  out[n] = '\0';
  append(buf, cap, len, out);
}

void write_all(int fd, const char *buf, std::size_t len) {
  while (len > 0) {
    ssize_t n = ::write(fd, buf, len);
    if (n <= 0) return;
    buf += n;
    len -= static_cast<std::size_t>(n);
  }
}

void on_fatal_signal(int sig) {
  char line[512];
  std::size_t len = 0;
  line[0] = '\0';
  append(line, sizeof line, &len, "bladed: fatal signal ");
  append_int(line, sizeof line, &len, sig);
  if (current_call.active) {
    append(line, sizeof line, &len, " inside plugin ");
    append(line, sizeof line, &len, current_call.plugin);
    append(line, sizeof line, &len, " (");
    append(line, sizeof line, &len, current_call.op);
    append(line, sizeof line, &len, " of experiment ");
    append(line, sizeof line, &len, current_call.uid);
    append(line, sizeof line, &len, ")");
  }
  append(line, sizeof line, &len, "\n");
  write_all(2, line, len);

  if (current_call.active && record_path[0]) {
    // "<uid> <op> <plugin> <signal>\n", read back at the next start.
    char rec[256];
    std::size_t rlen = 0;
    rec[0] = '\0';
    append(rec, sizeof rec, &rlen, current_call.uid);
    append(rec, sizeof rec, &rlen, " ");
    append(rec, sizeof rec, &rlen, current_call.op);
    append(rec, sizeof rec, &rlen, " ");
    append(rec, sizeof rec, &rlen, current_call.plugin);
    append(rec, sizeof rec, &rlen, " ");
    append_int(rec, sizeof rec, &rlen, sig);
    append(rec, sizeof rec, &rlen, "\n");
    int fd = ::open(record_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
      write_all(fd, rec, rlen);
      ::fsync(fd);
      ::close(fd);
    }
  }
  // Default action now: the process dies of the same signal (core dump and
  // exit status as without this handler).
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

void install_crash_handler(const std::filesystem::path &record_file) {
  copy_into(record_path, sizeof record_path, record_file.string());
  struct sigaction sa {};
  sa.sa_handler = &on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  // SA_RESETHAND: a fault inside the handler itself kills at once.
  sa.sa_flags = SA_RESETHAND | SA_NODEFER;
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT})
    ::sigaction(sig, &sa, nullptr);
}

std::optional<CrashedCall> read_crash_record(const std::filesystem::path &record_file) {
  std::ifstream in(record_file);
  if (!in) return std::nullopt;
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  std::istringstream words(line);
  CrashedCall c;
  if (!(words >> c.uid >> c.op >> c.plugin >> c.signal)) return std::nullopt;
  return c;
}

PluginCallMark::PluginCallMark(std::string_view plugin, std::string_view op,
                               std::string_view uid) noexcept
    : outer_(!current_call.active) {
  if (!outer_) return;
  copy_into(current_call.plugin, sizeof current_call.plugin, plugin);
  copy_into(current_call.op, sizeof current_call.op, op);
  copy_into(current_call.uid, sizeof current_call.uid, uid);
  current_call.active = true;
}

PluginCallMark::~PluginCallMark() {
  if (outer_) current_call.active = false;
}

}  // namespace blade
