#include "proc_stat.hpp"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace blade::os {
namespace {

std::optional<int> to_int(std::string_view s) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// Beyond any host's core count: bounds the ranges a typo could ask for.
constexpr int kMaxCore = 1 << 16;

}  // namespace

namespace {

// The fields after a "cpuN" name: user nice system idle iowait irq softirq
// steal (guest time is already in user).
CpuTicks parse_ticks(std::istringstream &fields) {
  std::uint64_t v[8] = {};
  for (auto &x : v)
    fields >> x;
  CpuTicks t;
  t.total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
  t.busy = t.total - v[3] - v[4];
  return t;
}

}  // namespace

std::map<int, CpuTicks> read_cpu_ticks() {
  std::map<int, CpuTicks> out;
  std::ifstream in("/proc/stat");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("cpu", 0) != 0) {
      if (!out.empty()) break;  // the cpu lines come first; skip the long intr line
      continue;
    }
    std::istringstream fields(line);
    std::string name;
    fields >> name;
    auto core = to_int(std::string_view(name).substr(3));
    if (!core) continue;  // the aggregate "cpu" line
    out[*core] = parse_ticks(fields);
  }
  return out;
}

namespace {

// The line named `name` (with its trailing space) among the cpu lines.
std::optional<CpuTicks> read_named_ticks(const std::string &name) {
  std::ifstream in("/proc/stat");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) == 0) {
      std::istringstream fields(line.substr(name.size()));
      return parse_ticks(fields);
    }
    if (line.rfind("cpu", 0) != 0) break;  // past the cpu lines
  }
  return std::nullopt;
}

}  // namespace

// Every burner calls these ten times a second: only one line is parsed.
std::optional<CpuTicks> read_core_ticks(int core) {
  return read_named_ticks("cpu" + std::to_string(core) + " ");
}

std::optional<CpuTicks> read_host_ticks() { return read_named_ticks("cpu "); }

double utilisation_percent(const CpuTicks &before, const CpuTicks &after) {
  if (after.total <= before.total) return 0;
  const double busy = static_cast<double>(after.busy - std::min(after.busy, before.busy));
  return std::clamp(100.0 * busy / static_cast<double>(after.total - before.total), 0.0, 100.0);
}

std::vector<int> parse_cpu_list(std::string_view text) {
  std::vector<int> out;
  if (text.empty()) throw std::invalid_argument("empty; expected cores like 0-1,3");
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    const std::string_view item = text.substr(pos, comma - pos);
    const std::size_t dash = item.find('-');
    auto first = to_int(item.substr(0, dash));
    auto last = dash == std::string_view::npos ? first : to_int(item.substr(dash + 1));
    if (!first || !last || *first < 0 || *last < 0) {
      throw std::invalid_argument("'" + std::string(item) +
                                  "' is not a core or a range like 0-3 (in '" + std::string(text) +
                                  "')");
    }
    if (*first > *last)
      throw std::invalid_argument("range '" + std::string(item) + "' runs backwards");
    if (*last >= kMaxCore)
      throw std::invalid_argument("core " + std::to_string(*last) + " is out of range");
    for (int c = *first; c <= *last; ++c)
      out.push_back(c);
    pos = comma + 1;
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<int> usable_cpus() {
  std::vector<int> online;
  std::ifstream in("/sys/devices/system/cpu/online");
  std::string line;
  if (std::getline(in, line) && !line.empty()) {
    try {
      online = parse_cpu_list(line);
    } catch (const std::invalid_argument &) {
      online.clear();
    }
  }
  if (online.empty()) {  // no sysfs (some containers): the cores /proc/stat knows
    for (const auto &[core, ticks] : read_cpu_ticks())
      online.push_back(core);
  }
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (::sched_getaffinity(0, sizeof(mask), &mask) != 0) return online;
  std::vector<int> out;
  for (int c : online)
    if (c < CPU_SETSIZE && CPU_ISSET(c, &mask)) out.push_back(c);
  return out;
}

}  // namespace blade::os
