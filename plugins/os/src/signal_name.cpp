#include "signal_name.hpp"

#include <csignal>
#include <cstring>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <tuple>

namespace blade::os {
namespace {

constexpr int kMaxSignal = 64;

std::string upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

std::optional<int> number(std::string_view s) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// "RTMIN", "RTMIN+n", "RTMAX", "RTMAX-n" (the real-time signals have no
// fixed numbers: glibc reserves the first few).
std::optional<int> realtime(std::string_view name) {
  for (auto [base, value, sign] : {std::tuple{std::string_view("RTMIN"), SIGRTMIN, '+'},
                                   std::tuple{std::string_view("RTMAX"), SIGRTMAX, '-'}}) {
    if (!name.starts_with(base)) continue;
    auto rest = name.substr(base.size());
    if (rest.empty()) return value;
    if (rest.front() != sign) return std::nullopt;
    auto n = number(rest.substr(1));
    if (!n) return std::nullopt;
    const int sig = sign == '+' ? value + *n : value - *n;
    if (sig < SIGRTMIN || sig > SIGRTMAX) return std::nullopt;
    return sig;
  }
  return std::nullopt;
}

}  // namespace

std::optional<int> parse_signal(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (auto n = number(text)) {
    if (*n < 1 || *n > kMaxSignal) return std::nullopt;
    return n;
  }
  std::string name = upper(text);
  if (name.starts_with("SIG")) name.erase(0, 3);
  // Old names the kill(1) of procps still takes.
  if (name == "IOT") return SIGABRT;
  if (name == "IO") return SIGIO;
  if (name == "CLD") return SIGCHLD;
  for (int sig = 1; sig < SIGRTMIN; ++sig) {
    const char *abbrev = ::sigabbrev_np(sig);
    if (abbrev && name == abbrev) return sig;
  }
  return realtime(name);
}

std::string signal_name(int sig) {
  if (const char *abbrev = ::sigabbrev_np(sig)) return std::string("SIG") + abbrev;
  if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
    return sig == SIGRTMIN ? "SIGRTMIN" : "SIGRTMIN+" + std::to_string(sig - SIGRTMIN);
  }
  return std::to_string(sig);
}

}  // namespace blade::os
