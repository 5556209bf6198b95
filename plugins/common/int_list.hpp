// Lists as ChaosBlade's flags write them: whole numbers: "80,8000-8080"
// (ports) or "1234,5678" (pids). Kept as ranges, so "1-65535" costs two
// numbers, not 65535. Header only, shared by the plugins of this repository.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace blade::plugins {

struct IntRange {
  std::int64_t first = 0;
  std::int64_t last = 0;  // inclusive
  bool contains(std::int64_t v) const { return first <= v && v <= last; }
};

struct IntListRules {
  std::int64_t min = 0;
  std::int64_t max = 0;
  bool ranges = true;        // "a-b" allowed
  std::string_view noun;     // "port", "pid": what an item is, for the messages
  std::string_view example;  // shown when an item cannot be read
};

namespace detail {
inline bool to_int64(std::string_view s, std::int64_t &out) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}
}  // namespace detail

// Parses a comma list of numbers (and "a-b" ranges when allowed), each within
// [min, max]. Throws std::invalid_argument saying what is wrong, without the
// flag's name (the caller prefixes it).
inline std::vector<IntRange> parse_int_list(std::string_view text, const IntListRules &rules) {
  std::vector<IntRange> out;
  const std::string noun(rules.noun);
  if (text.find_first_not_of(" \t") == std::string_view::npos)
    throw std::invalid_argument("empty; expected " + std::string(rules.example));
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    const std::string_view item = text.substr(pos, comma - pos);
    pos = comma + 1;
    const std::size_t dash = rules.ranges ? item.find('-') : std::string_view::npos;
    IntRange r;
    const bool ok = dash == std::string_view::npos
                        ? detail::to_int64(item, r.first) && detail::to_int64(item, r.last)
                        : detail::to_int64(item.substr(0, dash), r.first) &&
                              detail::to_int64(item.substr(dash + 1), r.last);
    if (!ok)
      throw std::invalid_argument("'" + std::string(item) + "' is not a " + noun +
                                  (rules.ranges ? " or a range" : "") + " (expected " +
                                  std::string(rules.example) + ")");
    if (r.first > r.last)
      throw std::invalid_argument("range '" + std::string(item) + "' runs backwards");
    if (r.first < rules.min || r.last > rules.max)
      throw std::invalid_argument(noun + " '" + std::string(item) + "' is outside " +
                                  std::to_string(rules.min) + "-" + std::to_string(rules.max));
    out.push_back(r);
  }
  return out;
}

// A comma list of texts ("a, b,c"): each item trimmed of blanks, empty items
// dropped. ChaosBlade's name lists (exclude-process, syscall-name, ...).
inline std::vector<std::string> split_comma_list(std::string_view text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    const std::string_view item = text.substr(pos, comma - pos);
    pos = comma + 1;
    const auto first = item.find_first_not_of(" \t");
    if (first == std::string_view::npos) continue;
    out.emplace_back(item.substr(first, item.find_last_not_of(" \t") - first + 1));
  }
  return out;
}

inline bool in_int_list(const std::vector<IntRange> &list, std::int64_t v) {
  return std::any_of(list.begin(), list.end(), [v](const IntRange &r) { return r.contains(v); });
}

}  // namespace blade::plugins
