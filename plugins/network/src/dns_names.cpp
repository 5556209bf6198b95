#include "dns_names.hpp"

#include <algorithm>

namespace blade::network {
namespace {

bool label_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

}  // namespace

std::string hostname_problem(std::string_view name) {
  if (name.empty()) return "empty; expected a host name such as www.example.com";
  if (name.size() > 253) return "longer than 253 characters";
  // Built by appending: GCC 12 at -O3 takes "'" + std::string(...) for an
  // overlapping memcpy (-Wrestrict, a false positive that -Werror fails on).
  std::string quoted(1, '\'');
  quoted.append(name).push_back('\'');
  std::size_t start = 0;
  while (start <= name.size()) {
    const std::size_t dot = std::min(name.find('.', start), name.size());
    const std::string_view label = name.substr(start, dot - start);
    if (label.empty()) return quoted + " has an empty label (two dots, or one at an end)";
    if (label.size() > 63) return quoted + " has a label longer than 63 characters";
    for (char c : label)
      if (!label_char(c))
        return quoted + " is not a host name: only letters, digits, '-' and dots are allowed";
    if (label.front() == '-' || label.back() == '-')
      return quoted + " has a label that starts or ends with '-'";
    start = dot + 1;
  }
  return "";
}

std::string lower_name(std::string_view name) {
  std::string out(name);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return out;
}

bool name_is_allowed(std::string_view name, const std::vector<std::string> &allowed) {
  return std::any_of(allowed.begin(), allowed.end(), [&](const std::string &domain) {
    if (name == domain) return true;
    return name.size() > domain.size() && name.ends_with(domain) &&
           name[name.size() - domain.size() - 1] == '.';
  });
}

}  // namespace blade::network
