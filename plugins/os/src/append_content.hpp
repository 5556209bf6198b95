// What `file append` writes: ChaosBlade's content templates, expanded
// afresh for every line, and (with `escape`) echo -e's backslash escapes.
//
//   @{DATE:+FORMAT}   the time of the write as date(1) prints `date +FORMAT`
//                     (strftime conversions, and %N for nanoseconds)
//   @{RANDOM:A-B}     an integer from A up to B-1 (A < B), as ChaosBlade draws it
//   \@{...}           the template's text itself, without the backslash
//
// Each line ends in "\n", as echo ends it.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace blade::os::append {

class Content {
 public:
  // Parses the content (already base64-decoded). Throws sdk::InvalidArgument
  // on field `content` for a template that cannot be expanded (a DATE whose
  // format does not start with '+', a RANDOM whose range is empty).
  static Content parse(const std::string &text, bool escape);

  // `count` lines, each expanded now.
  std::string lines(long long count) const;
  // The length of one line with its templates unexpanded: what a size
  // check of `count` lines goes by.
  std::size_t template_size() const { return size_; }

 private:
  struct Part {
    enum Kind { kText, kDate, kRandom } kind = kText;
    std::string text;             // the literal, or the DATE format without its '+'
    long long low = 0, high = 0;  // RANDOM: low <= n < high
  };
  std::string line() const;

  std::vector<Part> parts_;
  bool escape_ = false;
  std::size_t size_ = 0;
};

}  // namespace blade::os::append
