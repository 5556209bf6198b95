#include "append_content.hpp"

#include <time.h>

#include <cctype>
#include <cstdio>
#include <ctime>
#include <random>
#include <string_view>

#include <blade/plugin.hpp>

namespace blade::os::append {
namespace {

constexpr std::string_view kDate = "@{DATE:";
constexpr std::string_view kRandom = "@{RANDOM:";

bool starts(std::string_view text, std::size_t at, std::string_view prefix) {
  return text.compare(at, prefix.size(), prefix) == 0;
}

// The end (one past '}') of the template at `at`, or npos when none starts
// there. A RANDOM is only `digits-digits`, as ChaosBlade's pattern has it;
// a DATE's format runs to the first '}' and may not hold '@' or '{'.
std::size_t template_end(std::string_view text, std::size_t at) {
  if (starts(text, at, kDate)) {
    const std::size_t from = at + kDate.size();
    const std::size_t close = text.find('}', from);
    if (close == std::string_view::npos || close == from) return std::string_view::npos;
    if (text.substr(from, close - from).find_first_of("@{") != std::string_view::npos)
      return std::string_view::npos;
    return close + 1;
  }
  if (starts(text, at, kRandom)) {
    std::size_t i = at + kRandom.size();
    auto digits = [&] {
      const std::size_t first = i;
      while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])))
        ++i;
      return i > first;
    };
    if (!digits() || i >= text.size() || text[i] != '-') return std::string_view::npos;
    ++i;
    if (!digits() || i >= text.size() || text[i] != '}') return std::string_view::npos;
    return i + 1;
  }
  return std::string_view::npos;
}

long long number(const std::string &digits) {
  try {
    return std::stoll(digits);
  } catch (const std::exception &) {
    throw sdk::InvalidArgument("content: @{RANDOM:...} bound out of range: " + digits);
  }
}

// date(1)'s rendering of `format` (no '+') at `now`: strftime, plus %N.
std::string render_date(const std::string &format, const struct timespec &now) {
  std::string spec;
  for (std::size_t i = 0; i < format.size(); ++i) {
    if (format[i] == '%' && i + 1 < format.size()) {
      if (format[i + 1] == 'N') {
        char ns[16];
        std::snprintf(ns, sizeof ns, "%09ld", now.tv_nsec);
        spec += ns;
      } else {
        spec += format.substr(i, 2);
      }
      ++i;
    } else {
      spec += format[i];
    }
  }
  struct tm local {};
  ::localtime_r(&now.tv_sec, &local);
  // An empty result is legitimate (a format of only %p in some locales):
  // give it room once more before taking it as empty.
  for (std::size_t room : {256u, 4096u}) {
    std::string out(room, '\0');
    const std::size_t n = std::strftime(out.data(), out.size(), spec.c_str(), &local);
    if (n > 0 || spec.empty()) return out.substr(0, n);
  }
  return {};
}

// echo -e: \\ \a \b \e \f \n \r \t \v, \0NNN (octal), \xHH (hex); \c ends
// the output there, newline included. Unknown escapes stay as typed.
std::string echo_e(const std::string &text, bool &stop) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out.push_back(text[i]);
      continue;
    }
    const char c = text[++i];
    switch (c) {
      case '\\':
        out.push_back('\\');
        break;
      case 'a':
        out.push_back('\a');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'e':
        out.push_back('\x1b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'v':
        out.push_back('\v');
        break;
      case 'c':
        stop = true;
        return out;
      case '0': {
        int v = 0, n = 0;
        while (n < 3 && i + 1 < text.size() && text[i + 1] >= '0' && text[i + 1] <= '7') {
          v = v * 8 + (text[++i] - '0');
          ++n;
        }
        out.push_back(static_cast<char>(v));
        break;
      }
      case 'x': {
        int v = 0, n = 0;
        while (n < 2 && i + 1 < text.size() &&
               std::isxdigit(static_cast<unsigned char>(text[i + 1]))) {
          const char h = static_cast<char>(std::tolower(static_cast<unsigned char>(text[++i])));
          v = v * 16 + (h <= '9' ? h - '0' : h - 'a' + 10);
          ++n;
        }
        if (n == 0) {
          out += "\\x";
        } else {
          out.push_back(static_cast<char>(v));
        }
        break;
      }
      default:
        out.push_back('\\');
        out.push_back(c);
    }
  }
  return out;
}

}  // namespace

Content Content::parse(const std::string &text, bool escape) {
  Content c;
  c.escape_ = escape;
  c.size_ = text.size() + 1;
  auto literal = [&](std::string_view s) {
    if (c.parts_.empty() || c.parts_.back().kind != Part::kText) c.parts_.push_back({});
    c.parts_.back().text += s;
  };
  for (std::size_t i = 0; i < text.size();) {
    // \@{...}: the template's own text, the backslash dropped.
    if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == '@') {
      if (const std::size_t end = template_end(text, i + 1); end != std::string::npos) {
        literal(std::string_view(text).substr(i + 1, end - i - 1));
        i = end;
        continue;
      }
    }
    const std::size_t end = text[i] == '@' ? template_end(text, i) : std::string::npos;
    if (end == std::string::npos) {
      literal(std::string_view(text).substr(i, 1));
      ++i;
      continue;
    }
    Part p;
    if (starts(text, i, kDate)) {
      const std::string format = text.substr(i + kDate.size(), end - 1 - i - kDate.size());
      // date(1) without '+' takes its argument as a time to SET the clock.
      if (format.front() != '+')
        throw sdk::InvalidArgument("content: @{DATE:" + format +
                                   "} needs a format starting with '+', e.g. @{DATE:+%F %T}");
      p.kind = Part::kDate;
      p.text = format.substr(1);
    } else {
      const std::string range = text.substr(i + kRandom.size(), end - 1 - i - kRandom.size());
      const std::size_t dash = range.find('-');
      p.kind = Part::kRandom;
      p.low = number(range.substr(0, dash));
      p.high = number(range.substr(dash + 1));
      if (p.high <= p.low)
        throw sdk::InvalidArgument("content: @{RANDOM:" + range +
                                   "} needs the first bound below the second");
    }
    c.parts_.push_back(std::move(p));
    i = end;
  }
  return c;
}

std::string Content::line() const {
  // One generator per thread: the appender's thread and create's own.
  thread_local std::mt19937_64 rng{std::random_device{}()};
  struct timespec now {};
  ::clock_gettime(CLOCK_REALTIME, &now);
  std::string out;
  for (const Part &p : parts_) {
    switch (p.kind) {
      case Part::kText:
        out += p.text;
        break;
      case Part::kDate:
        out += render_date(p.text, now);
        break;
      case Part::kRandom:
        out += std::to_string(std::uniform_int_distribution<long long>(p.low, p.high - 1)(rng));
        break;
    }
  }
  if (!escape_) return out + "\n";
  bool stop = false;
  out = echo_e(out, stop);
  return stop ? out : out + "\n";
}

std::string Content::lines(long long count) const {
  std::string out;
  for (long long i = 0; i < count; ++i)
    out += line();
  return out;
}

}  // namespace blade::os::append
