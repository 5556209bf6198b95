#include "suggest.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace blade::cli {
namespace {

// Optimal string alignment distance: insertions, deletions, substitutions
// and swaps of neighbours ("laod" for "load") each count one.
std::size_t distance(const std::string &a, const std::string &b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i)
    d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j)
    d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

std::optional<std::string> closest(const std::string &word,
                                   const std::vector<std::string> &candidates) {
  std::optional<std::string> best;
  std::size_t best_distance = 0;
  for (const auto &c : candidates) {
    if (c == word) continue;
    const std::size_t d = distance(word, c);
    if (d > 2 || 2 * d >= std::max(word.size(), c.size())) continue;
    if (!best || d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

std::string did_you_mean(const std::string &word, const std::vector<std::string> &candidates,
                         const std::string &prefix) {
  const auto near = closest(word, candidates);
  return near ? fmt::format(" (did you mean '{}{}'?)", prefix, *near) : "";
}

}  // namespace blade::cli
