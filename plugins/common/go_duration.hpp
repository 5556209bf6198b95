// Durations as the spec's `duration` flags and ChaosBlade write them: a Go
// duration ("-2h3m50s", "5m", "1.5h", "300ms") or a bare integer of seconds
// ("90"). The host checked the flag's syntax already; a plugin still parses
// the text itself, with its own bound. Header only, shared by the plugins
// of this repository.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

namespace blade::plugins {

// Nanoseconds of `text` (negative with a leading '-'), or nullopt when it
// is not a duration or its size passes `max_ns`.
inline std::optional<std::int64_t> go_duration_ns(std::string_view text, long double max_ns) {
  constexpr long double kNs = 1e9L;
  bool negative = false;
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  if (text.empty()) return std::nullopt;
  const bool bare = text.find_first_not_of("0123456789") == std::string_view::npos;
  long double total = 0;
  while (!text.empty()) {
    std::size_t i = 0;
    long double number = 0;
    bool digits = false;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, digits = true)
      number = number * 10 + (text[i] - '0');
    if (i < text.size() && text[i] == '.') {
      long double scale = 0.1L;
      for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, scale /= 10) {
        number += (text[i] - '0') * scale;
        digits = true;
      }
    }
    if (!digits) return std::nullopt;
    std::size_t u = i;
    while (u < text.size() && !(text[u] >= '0' && text[u] <= '9') && text[u] != '.')
      ++u;
    const std::string_view unit = text.substr(i, u - i);
    static constexpr std::pair<std::string_view, long double> kUnits[] = {
        {"h", 3600.0L * kNs}, {"m", 60.0L * kNs}, {"s", kNs},        {"ms", 1e6L},
        {"us", 1e3L},         {"\u00b5s", 1e3L},  {"\u03bcs", 1e3L}, {"ns", 1}};
    long double scale = unit.empty() && bare ? kNs : 0;
    for (const auto &[name, ns] : kUnits)
      if (unit == name) scale = ns;
    if (scale == 0) return std::nullopt;
    total += number * scale;
    if (total > max_ns) return std::nullopt;
    text.remove_prefix(u);
  }
  const auto ns = static_cast<std::int64_t>(std::llround(total));
  return negative ? -ns : ns;
}

}  // namespace blade::plugins
