// The pieces a compiled rule matches a request with: a string matcher
// (exact, prefix, or a whole-string RE2 expression) for the path and for
// header values, and a header matcher that finds its header by name,
// case-insensitively. Built once per rule set; matching is const and
// thread-safe (RE2 objects may be shared by any number of threads).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "fault_engine.hpp"  // HeaderField

namespace re2 {
class RE2;
}

namespace blade::http {

// Compiles `pattern` as RE2 with the options every rule uses: no logging of
// bad patterns to stderr (a user's typo is an answer, not a daemon log
// line) and a bounded memory budget per expression, so a hostile pattern
// fails to compile instead of growing the daemon. Null with `error` set
// when the pattern is not usable.
std::shared_ptr<const re2::RE2> compile_regex(std::string_view pattern, std::string &error);

class StringMatcher {
 public:
  enum class Kind { any, exact, prefix, regex };

  StringMatcher() = default;  // matches anything
  static StringMatcher exact(std::string text);
  static StringMatcher prefix(std::string text);
  // Throws std::invalid_argument with RE2's reason for a pattern it refuses.
  static StringMatcher regex(std::string_view pattern);

  bool matches(std::string_view s) const;
  Kind kind() const { return kind_; }

 private:
  Kind kind_ = Kind::any;
  std::string text_;
  std::shared_ptr<const re2::RE2> regex_;
  // Every string the regex matches lies in [min_, max_] (RE2's
  // PossibleMatchRange), so most strings of other rules' services are
  // refused by two comparisons instead of a match; empty when RE2 cannot
  // bound the pattern (one starting with ".*").
  std::string min_;
  std::string max_;
};

struct HeaderMatcher {
  std::string name;     // lower-case
  StringMatcher value;  // Kind::any: the header being present is enough
  // True when any header of that name has a matching value: a request may
  // repeat a header, and the rule asks whether one of them says so.
  bool matches(std::span<const HeaderField> headers) const;
};

// The path of a request target: the part before '?'. An absolute-form
// target ("http://host/p?q", what a client configured to use a proxy
// sends) gives its path too ("/p", or "/" when it has none).
std::string_view path_of(std::string_view target);

// ASCII case-insensitive equality: header names are ASCII tokens.
bool iequals(std::string_view a, std::string_view b);
// An RFC 9110 token: the syntax of header names and methods.
bool is_token(std::string_view s);
std::string to_lower(std::string_view s);

}  // namespace blade::http
