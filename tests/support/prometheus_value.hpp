// One sample of a Prometheus text exposition (GET /metrics), for tests and
// benchmarks that read a daemon's counters.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace blade::test {

// The value of the metric `name` sampled without labels ("name 42" on a
// line of its own); nullopt when no such line is in `text`.
inline std::optional<double> prometheus_value(std::string_view text, std::string_view name) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    if (line.size() > name.size() && line.substr(0, name.size()) == name &&
        line[name.size()] == ' ') {
      const std::string value(line.substr(name.size() + 1));
      char *parsed_to = nullptr;
      const double v = std::strtod(value.c_str(), &parsed_to);
      if (parsed_to != value.c_str()) return v;
    }
    pos = end + 1;
  }
  return std::nullopt;
}

}  // namespace blade::test
