// The summaries every benchmark reports: one definition, so their figures
// are computed the same way.
#pragma once

#include <algorithm>
#include <vector>

namespace blade::bench {

// Nearest rank on 0..n-1: p 0.5 is the median, 0.99 the p99; 0 when empty.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

inline double median(std::vector<double> v) {
  return percentile(std::move(v), 0.5);
}

inline double mean(const std::vector<double> &v) {
  double sum = 0;
  for (double x : v)
    sum += x;
  return v.empty() ? 0 : sum / static_cast<double>(v.size());
}

}  // namespace blade::bench
