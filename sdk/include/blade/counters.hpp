// SPDX-License-Identifier: Apache-2.0
// Blade plugin SDK: live counters (ABI 1.5, blade_host_api.report_counters).
//
// The one definition of the counters document's rules, header-only and
// standard-library-only so that bladed, the test harness
// (blade/plugin_test.hpp) and plugins all check a report the same way:
//
//   {"series": [{"labels": {"rule": "checkout/0"},
//                "counters": {"total_requests": 12, "errors": 0}}]}
//
//  - the text is at most kMaxCountersBytes bytes, one JSON object holding
//    exactly the member "series", an array of at most kMaxCounterSeries
//    objects;
//  - a series has "counters" (required) and "labels" (optional), nothing
//    else; no two series have the same labels;
//  - counter and label names match [a-z_][a-z0-9_]*, at most 64 characters,
//    and appear once per object; label names "plugin" and "uid" (the host
//    adds those) and names starting "__" (reserved by Prometheus) are
//    refused;
//  - counter values are non-negative integers written without fraction or
//    exponent, at most 2^64-1; label values are strings of valid UTF-8.
//
// A plugin builds its report with counters_json() and hands it to
// blade::sdk::Host::report_counters; parse_counters() says what is wrong
// with a text, naming the field (e.g. "series[2].counters.Errors: ...").
#ifndef BLADE_COUNTERS_HPP
#define BLADE_COUNTERS_HPP

#include <blade/plugin.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace blade::sdk {

inline constexpr std::size_t kMaxCounterSeries = 64;
inline constexpr std::size_t kMaxCountersBytes = 64 * 1024;
inline constexpr std::size_t kMaxCounterNameLength = 64;

// One series: its labels and its counters, each in the order written.
struct CounterSeries {
  std::vector<std::pair<std::string, std::string>> labels;
  std::vector<std::pair<std::string, std::uint64_t>> counters;
};

// parse_counters' answer: the series when the text keeps every rule, else
// an error naming the first field that breaks one.
struct CountersParse {
  std::vector<CounterSeries> series;
  std::string error;
  bool ok() const { return error.empty(); }
};

// True for a counter or label name the rules allow ([a-z_][a-z0-9_]*, at
// most kMaxCounterNameLength).
inline bool counter_name_ok(std::string_view name) {
  if (name.empty() || name.size() > kMaxCounterNameLength) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

namespace detail {

// A reader of exactly the counters document's shape. Strings are decoded
// (escapes resolved, UTF-8 checked) because label values end up in other
// JSON documents and in the metrics text.
class CountersReader {
 public:
  explicit CountersReader(std::string_view text) : s_(text) {}

  CountersParse run() {
    CountersParse out;
    if (s_.size() > kMaxCountersBytes) {
      out.error = "the report is " + std::to_string(s_.size()) + " bytes, more than " +
                  std::to_string(kMaxCountersBytes);
      return out;
    }
    bool seen_series = false;
    const bool ok = object("", [&](const std::string &key, const std::string &path) {
      if (key != "series") return fail(path, "unknown field (only \"series\")");
      seen_series = true;
      return series_array(path, out.series);
    });
    if (ok) {
      skip_ws();
      if (i_ != s_.size()) fail("", "text after the JSON object");
      else if (!seen_series) fail("series", "missing");
    }
    if (!error_.empty()) {
      out.series.clear();
      out.error = std::move(error_);
    }
    return out;
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
  std::string error_;

  bool fail(const std::string &path, const std::string &why) {
    if (error_.empty()) error_ = (path.empty() ? std::string("the report") : path) + ": " + why;
    return false;
  }
  bool at_end() const { return i_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[i_]; }
  void skip_ws() {
    while (!at_end() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  static std::string member(const std::string &path, const std::string &key) {
    return path.empty() ? key : path + "." + key;
  }

  // { "key": <value read by on_member>, ... } with each key at most once.
  template <class OnMember>
  bool object(const std::string &path, OnMember &&on_member) {
    skip_ws();
    if (peek() != '{') return fail(path, "not a JSON object");
    ++i_;
    std::vector<std::string> keys;
    skip_ws();
    if (peek() == '}') {
      ++i_;
      return true;
    }
    for (;;) {
      skip_ws();
      std::string key;
      if (!string(path, key)) return false;
      if (std::find(keys.begin(), keys.end(), key) != keys.end())
        return fail(member(path, key), "appears twice");
      keys.push_back(key);
      skip_ws();
      if (peek() != ':') return fail(path, "malformed JSON (':' expected)");
      ++i_;
      skip_ws();
      if (!on_member(key, member(path, key))) return false;
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() != '}') return fail(path, "malformed JSON (',' or '}' expected)");
      ++i_;
      return true;
    }
  }

  bool series_array(const std::string &path, std::vector<CounterSeries> &out) {
    if (peek() != '[') return fail(path, "not an array");
    ++i_;
    skip_ws();
    if (peek() == ']') {
      ++i_;
      return true;
    }
    for (;;) {
      std::string at = path + "[" + std::to_string(out.size()) + "]";
      if (out.size() == kMaxCounterSeries)
        return fail(path, "more than " + std::to_string(kMaxCounterSeries) + " series");
      CounterSeries one;
      if (!series(at, one)) return false;
      auto sorted = [](std::vector<std::pair<std::string, std::string>> l) {
        std::sort(l.begin(), l.end());
        return l;
      };
      const auto mine = sorted(one.labels);
      for (std::size_t k = 0; k < out.size(); ++k)
        if (sorted(out[k].labels) == mine)
          return fail(at, "the same labels as " + path + "[" + std::to_string(k) + "]");
      out.push_back(std::move(one));
      skip_ws();
      if (peek() == ',') {
        ++i_;
        skip_ws();
        continue;
      }
      if (peek() != ']') return fail(path, "malformed JSON (',' or ']' expected)");
      ++i_;
      return true;
    }
  }

  bool series(const std::string &path, CounterSeries &out) {
    bool seen_counters = false;
    bool ok = object(path, [&](const std::string &key, const std::string &at) {
      if (key == "labels") return labels(at, out.labels);
      if (key == "counters") {
        seen_counters = true;
        return counters(at, out.counters);
      }
      return fail(at, "unknown field (only \"labels\" and \"counters\")");
    });
    if (ok && !seen_counters) return fail(member(path, "counters"), "missing");
    return ok;
  }

  bool name(const std::string &at, const std::string &key) {
    if (!counter_name_ok(key))
      return fail(at, "not a valid name ([a-z_][a-z0-9_]*, at most " +
                          std::to_string(kMaxCounterNameLength) + " characters)");
    return true;
  }

  bool labels(const std::string &path, std::vector<std::pair<std::string, std::string>> &out) {
    return object(path, [&](const std::string &key, const std::string &at) {
      if (!name(at, key)) return false;
      if (key == "plugin" || key == "uid") return fail(at, "reserved: the host adds this label");
      if (key.rfind("__", 0) == 0) return fail(at, "reserved: names starting \"__\"");
      std::string value;
      if (peek() != '"') return fail(at, "not a string");
      if (!string(at, value)) return false;
      out.emplace_back(key, std::move(value));
      return true;
    });
  }

  bool counters(const std::string &path, std::vector<std::pair<std::string, std::uint64_t>> &out) {
    return object(path, [&](const std::string &key, const std::string &at) {
      if (!name(at, key)) return false;
      std::uint64_t v = 0;
      if (!count(at, v)) return false;
      out.emplace_back(key, v);
      return true;
    });
  }

  // A non-negative integer: digits only, no leading zero, fits 64 bits.
  bool count(const std::string &at, std::uint64_t &v) {
    const std::size_t start = i_;
    while (!at_end() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    const std::string_view digits = s_.substr(start, i_ - start);
    const char next = peek();
    if (digits.empty() || next == '.' || next == 'e' || next == 'E' ||
        (digits.size() > 1 && digits[0] == '0'))
      return fail(at, "not a non-negative integer");
    v = 0;
    for (char c : digits) {
      const auto d = static_cast<std::uint64_t>(c - '0');
      if (v > (UINT64_MAX - d) / 10) return fail(at, "larger than 2^64-1");
      v = v * 10 + d;
    }
    return true;
  }

  static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  bool hex4(unsigned &out) {
    out = 0;
    for (int k = 0; k < 4; ++k) {
      const int h = at_end() ? -1 : hex_value(s_[i_++]);
      if (h < 0) return false;
      out = out * 16 + static_cast<unsigned>(h);
    }
    return true;
  }
  static void append_utf8(std::string &out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  // Length of the well-formed UTF-8 sequence starting at s_[i] (RFC 3629:
  // no overlongs, no surrogates, nothing above U+10FFFF), 0 if malformed.
  std::size_t utf8_length(std::size_t i) const {
    const auto b = [&](std::size_t k) {
      return i + k < s_.size() ? static_cast<unsigned char>(s_[i + k]) : 0u;
    };
    const unsigned c = b(0);
    auto cont = [&](std::size_t k) { return (b(k) & 0xC0) == 0x80; };
    if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
      const unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
      return b(1) >= lo && b(1) <= hi && cont(2) ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
      const unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
      return b(1) >= lo && b(1) <= hi && cont(2) && cont(3) ? 4 : 0;
    }
    return 0;
  }

  bool string(const std::string &at, std::string &out) {
    if (peek() != '"') return fail(at, "malformed JSON (a string expected)");
    ++i_;
    while (!at_end()) {
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return fail(at, "a control character inside a string");
      if (c >= 0x80) {
        const std::size_t n = utf8_length(i_);
        if (n == 0) return fail(at, "a string that is not valid UTF-8");
        out.append(s_.substr(i_, n));
        i_ += n;
        continue;
      }
      ++i_;
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      const char e = peek();
      ++i_;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = 0;
          if (!hex4(cp)) return fail(at, "a bad \\u escape");
          if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(at, "a lone low surrogate escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned low = 0;
            if (peek() != '\\' || (++i_, peek() != 'u') || (++i_, !hex4(low)) || low < 0xDC00 ||
                low > 0xDFFF)
              return fail(at, "a high surrogate escape without its low half");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default:
          return fail(at, "an unknown escape in a string");
      }
    }
    return fail(at, "an unterminated string");
  }
};

}  // namespace detail

// Checks `json` against the rules above and returns its series, or the
// first broken rule (ok() false). bladed and the test harness refuse a
// report exactly when this does.
inline CountersParse parse_counters(std::string_view json) {
  return detail::CountersReader(json).run();
}

// The report text for `series`, ready for Host::report_counters. Names are
// written as given: a name the rules refuse makes the host refuse the text.
inline std::string counters_json(const std::vector<CounterSeries> &series) {
  std::string out = "{\"series\":[";
  for (std::size_t k = 0; k < series.size(); ++k) {
    if (k) out += ',';
    out += "{\"labels\":{";
    for (std::size_t l = 0; l < series[k].labels.size(); ++l) {
      if (l) out += ',';
      out += json_quote(series[k].labels[l].first) + ':' + json_quote(series[k].labels[l].second);
    }
    out += "},\"counters\":{";
    for (std::size_t c = 0; c < series[k].counters.size(); ++c) {
      if (c) out += ',';
      out += json_quote(series[k].counters[c].first) + ':' +
             std::to_string(series[k].counters[c].second);
    }
    out += "}}";
  }
  return out + "]}";
}

}  // namespace blade::sdk

#endif  // BLADE_COUNTERS_HPP
