// The Prometheus text format 0.0.4 (GET /metrics) read strictly, for tests
// and benchmarks that check a daemon's exposition or read its counters:
// parse_exposition takes the whole text apart and throws, naming the line,
// on anything off-format; prometheus_value reads one unlabelled sample.
#pragma once

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace blade::test {

namespace prometheus {

using Labels = std::map<std::string, std::string>;

struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
};

struct Exposition {
  std::map<std::string, std::string> types;  // family -> counter, gauge, ...
  std::map<std::string, std::string> help;
  std::vector<Sample> samples;

  // The one sample with this name whose labels include `match`.
  std::optional<double> value(const std::string &name, const Labels &match = {}) const {
    std::optional<double> found;
    for (const auto &s : samples) {
      if (s.name != name) continue;
      bool ok = true;
      for (const auto &[k, v] : match) {
        auto it = s.labels.find(k);
        if (it == s.labels.end() || it->second != v) ok = false;
      }
      if (!ok) continue;
      if (found) throw std::runtime_error("more than one sample " + name);
      found = s.value;
    }
    return found;
  }
};

inline bool name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
inline bool name_char(char c) {
  return name_start(c) || std::isdigit(static_cast<unsigned char>(c));
}

// Reads a metric or label name at `pos`; throws if there is none.
inline std::string read_name(const std::string &line, std::size_t &pos, bool label) {
  std::size_t start = pos;
  if (pos >= line.size() || !name_start(line[pos]) || (label && line[pos] == ':'))
    throw std::runtime_error("expected a name at column " + std::to_string(pos));
  while (pos < line.size() && name_char(line[pos]) && !(label && line[pos] == ':'))
    ++pos;
  return line.substr(start, pos - start);
}

inline double read_value(const std::string &text) {
  if (text == "+Inf") return INFINITY;
  if (text == "-Inf") return -INFINITY;
  if (text == "NaN") return NAN;
  char *end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || text == "inf" || text == "nan")
    throw std::runtime_error("not a value: '" + text + "'");
  return v;
}

// `{a="x",b="y\"z"}` at `pos`, with the format's three escapes.
inline Labels read_labels(const std::string &line, std::size_t &pos) {
  Labels labels;
  ++pos;  // '{'
  while (true) {
    if (pos < line.size() && line[pos] == '}') {
      ++pos;
      return labels;
    }
    std::string name = read_name(line, pos, true);
    if (line.compare(pos, 2, "=\"") != 0) throw std::runtime_error("expected =\" after " + name);
    pos += 2;
    std::string value;
    while (true) {
      if (pos >= line.size()) throw std::runtime_error("unterminated label value");
      char c = line[pos++];
      if (c == '"') break;
      if (c == '\\') {
        if (pos >= line.size()) throw std::runtime_error("dangling backslash");
        char e = line[pos++];
        if (e == '\\') {
          value += '\\';
        } else if (e == '"') {
          value += '"';
        } else if (e == 'n') {
          value += '\n';
        } else {
          throw std::runtime_error(std::string("unknown escape \\") + e);
        }
      } else {
        value += c;
      }
    }
    if (!labels.emplace(name, value).second) throw std::runtime_error("label twice: " + name);
    if (pos < line.size() && line[pos] == ',')
      ++pos;
    else if (pos >= line.size() || line[pos] != '}')
      throw std::runtime_error("expected , or } after label " + name);
  }
}

// The family a sample belongs to: itself, or a histogram's/summary's base.
inline std::optional<std::string> family_of(const Exposition &x, const std::string &name) {
  if (x.types.count(name)) return name;
  for (const char *suffix : {"_bucket", "_sum", "_count"}) {
    std::string s = suffix;
    if (name.size() > s.size() && name.ends_with(s)) {
      auto base = name.substr(0, name.size() - s.size());
      auto it = x.types.find(base);
      if (it != x.types.end() && (it->second == "histogram" || it->second == "summary"))
        return base;
    }
  }
  return std::nullopt;
}

// Parses the whole text; throws naming the line for anything off-format: a
// bad line, a sample without a TYPE line before it, a TYPE given twice or
// after the family's samples.
inline Exposition parse_exposition(const std::string &text) {
  Exposition x;
  std::set<std::string> sampled;
  std::size_t start = 0;
  int number = 0;
  if (!text.empty() && text.back() != '\n') throw std::runtime_error("no final newline");
  while (start < text.size()) {
    auto nl = text.find('\n', start);
    std::string line = text.substr(start, nl - start);
    start = nl + 1;
    ++number;
    try {
      if (line.empty()) continue;
      if (line[0] == '#') {
        std::size_t pos = 1;
        while (pos < line.size() && line[pos] == ' ')
          ++pos;
        auto word_end = line.find(' ', pos);
        std::string keyword = line.substr(pos, word_end - pos);
        if (keyword != "HELP" && keyword != "TYPE") continue;  // a plain comment
        if (word_end == std::string::npos) throw std::runtime_error(keyword + " without a name");
        pos = word_end + 1;
        std::string name = read_name(line, pos, false);
        std::string rest = pos < line.size() ? line.substr(pos + 1) : "";
        if (keyword == "HELP") {
          x.help[name] = rest;
          continue;
        }
        static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                                     "untyped"};
        if (!kTypes.count(rest)) throw std::runtime_error("unknown type '" + rest + "'");
        if (x.types.count(name)) throw std::runtime_error("TYPE twice for " + name);
        if (sampled.count(name)) throw std::runtime_error("TYPE after samples of " + name);
        x.types[name] = rest;
        continue;
      }
      Sample s;
      std::size_t pos = 0;
      s.name = read_name(line, pos, false);
      if (pos < line.size() && line[pos] == '{') s.labels = read_labels(line, pos);
      if (pos >= line.size() || line[pos] != ' ') throw std::runtime_error("expected a space");
      std::string rest = line.substr(pos + 1);
      auto space = rest.find(' ');
      s.value = read_value(rest.substr(0, space));
      if (space != std::string::npos) {
        // An optional timestamp: an integer (milliseconds).
        std::string ts = rest.substr(space + 1);
        if (ts.empty() || ts.find_first_not_of("-0123456789") != std::string::npos)
          throw std::runtime_error("bad timestamp '" + ts + "'");
      }
      auto family = family_of(x, s.name);
      if (!family) throw std::runtime_error("no TYPE line for " + s.name);
      sampled.insert(*family);
      x.samples.push_back(std::move(s));
    } catch (const std::runtime_error &e) {
      throw std::runtime_error("line " + std::to_string(number) + " '" + line + "': " + e.what());
    }
  }
  return x;
}

}  // namespace prometheus

// The value of the metric `name` sampled without labels ("name 42" on a
// line of its own); nullopt when no such sample is in `text`. Read through
// the strict parser, so an exposition that is off-format throws (naming the
// line) rather than giving a number from a broken text.
inline std::optional<double> prometheus_value(std::string_view text, std::string_view name) {
  const prometheus::Exposition x = prometheus::parse_exposition(std::string(text));
  for (const auto &s : x.samples)
    if (s.name == name && s.labels.empty()) return s.value;
  return std::nullopt;
}

}  // namespace blade::test
