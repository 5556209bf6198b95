#include "hosts_lines.hpp"

#include <algorithm>
#include <sstream>

#include "dns_marked_file.hpp"
#include "dns_names.hpp"

namespace blade::network {
namespace {

struct Words {
  std::string address;
  std::vector<std::string> names;  // as written
};

Words words_of(std::string_view line) {
  Words out;
  std::istringstream in(std::string(line.substr(0, line.find('#'))));
  in >> out.address;
  for (std::string w; in >> w;)
    out.names.push_back(w);
  return out;
}

bool among(const std::string &name, const std::vector<std::string> &names) {
  return std::find(names.begin(), names.end(), lower_name(name)) != names.end();
}

}  // namespace

std::optional<NamingLine> first_line_naming(std::string_view text,
                                            const std::vector<std::string> &names) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    for (const std::string &name : words_of(line).names)
      if (among(name, names)) return NamingLine{std::string(line), lower_name(name)};
  }
  return std::nullopt;
}

HostsReplacement replace_names(std::string_view text, const std::vector<std::string> &names,
                               std::string_view uid) {
  HostsReplacement out;
  out.text = edit_lines(text, uid, [&](std::string_view line) {
    const Words w = words_of(line);
    ReplacedLine r{std::string(line), {}, {}};
    std::vector<std::string> others;
    for (const std::string &name : w.names) {
      if (!among(name, names))
        others.push_back(name);
      else if (std::find(r.names.begin(), r.names.end(), lower_name(name)) == r.names.end())
        r.names.push_back(lower_name(name));
    }
    if (r.names.empty()) return LineEdit{};
    if (!others.empty()) {
      r.kept = w.address;
      for (const std::string &name : others)
        r.kept += " " + name;
    }
    LineEdit edit{true, r.kept};
    out.replaced.push_back(std::move(r));
    return edit;
  });
  return out;
}

}  // namespace blade::network
