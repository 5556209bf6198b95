#include "rule_matchers.hpp"

#include <stdexcept>

#include <re2/re2.h>

namespace blade::http {
namespace {

// Per expression. RE2's default is 8 MiB; rule sets hold hundreds of
// expressions and their DFA caches grow on use, so each gets a smaller
// budget. Real path and header patterns need a few KiB; a pattern that does
// not fit (e.g. a huge counted repetition) is refused at compile time, and
// a DFA that outgrows the budget while matching falls back to RE2's NFA,
// which stays linear.
constexpr std::int64_t kRegexMaxMem = 1 << 20;
// How long the bounds of a regex's matches may be: enough to hold a path's
// literal head ("/api/v2/orders/").
constexpr int kRangeLength = 64;

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace

std::shared_ptr<const re2::RE2> compile_regex(std::string_view pattern, std::string &error) {
  RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(kRegexMaxMem);
  auto re =
      std::make_shared<const re2::RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!re->ok()) {
    error = re->error();
    return nullptr;
  }
  return re;
}

StringMatcher StringMatcher::exact(std::string text) {
  StringMatcher m;
  m.kind_ = Kind::exact;
  m.text_ = std::move(text);
  return m;
}

StringMatcher StringMatcher::prefix(std::string text) {
  StringMatcher m;
  m.kind_ = Kind::prefix;
  m.text_ = std::move(text);
  return m;
}

StringMatcher StringMatcher::regex(std::string_view pattern) {
  std::string error;
  auto re = compile_regex(pattern, error);
  if (!re) throw std::invalid_argument("not a valid RE2 expression: " + error);
  StringMatcher m;
  m.kind_ = Kind::regex;
  m.text_ = pattern;
  m.regex_ = std::move(re);
  if (!m.regex_->PossibleMatchRange(&m.min_, &m.max_, kRangeLength)) {
    m.min_.clear();
    m.max_.clear();
  }
  return m;
}

bool StringMatcher::matches(std::string_view s) const {
  switch (kind_) {
    case Kind::any:
      return true;
    case Kind::exact:
      return s == text_;
    case Kind::prefix:
      return s.starts_with(text_);
    case Kind::regex:
      if (!max_.empty() && (s < min_ || s > max_)) return false;
      return RE2::FullMatch(re2::StringPiece(s.data(), s.size()), *regex_);
  }
  return false;
}

bool HeaderMatcher::matches(std::span<const HeaderField> headers) const {
  for (const HeaderField &h : headers)
    if (iequals(h.name, name) && value.matches(h.value)) return true;
  return false;
}

std::string_view path_of(std::string_view target) {
  if (!target.starts_with('/')) {
    // Absolute form: skip "scheme://authority".
    auto scheme_end = target.find("://");
    if (scheme_end != std::string_view::npos) {
      auto path_start = target.find_first_of("/?", scheme_end + 3);
      if (path_start == std::string_view::npos || target[path_start] == '?') return "/";
      target.remove_prefix(path_start);
    }
  }
  return target.substr(0, target.find('?'));
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos)
      return false;
  }
  return true;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char &c : out)
    c = lower(c);
  return out;
}

}  // namespace blade::http
