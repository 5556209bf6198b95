// The hosts file as network dns reads it: which lines name a host, and
// those lines taken out of the way (replace) with the marked edits of
// dns_marked_file.hpp, so destroy gives back their exact bytes.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace blade::network {

// The first line of `text` that names one of `names` (lower case), with
// the name it names, if any. A line is "<address> <name> [<alias> ...]",
// anything after a '#' a comment.
struct NamingLine {
  std::string line;
  std::string name;
};
std::optional<NamingLine> first_line_naming(std::string_view text,
                                            const std::vector<std::string> &names);

// A line hidden by replace_names: the line as it was, the names of ours it
// gave, and the copy put after it with its other names ("" when it named
// only ours).
struct ReplacedLine {
  std::string line;
  std::vector<std::string> names;
  std::string kept;
};

struct HostsReplacement {
  std::string text;
  std::vector<ReplacedLine> replaced;
};

// `text` with every line naming one of `names` (lower case) hidden for
// `uid`; a line that also names other hosts gets a marked copy right after
// it, "<address> <other names>", so those keep resolving as before (in the
// same place among the lines, which decides which address answers first).
HostsReplacement replace_names(std::string_view text, const std::vector<std::string> &names,
                               std::string_view uid);

}  // namespace blade::network
