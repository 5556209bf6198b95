// Domain names as the dns faults take them: checked before anything is
// written (a name in /etc/hosts is one whitespace-free token, and a '#'
// would start a comment), and matched the way DNS compares names: case
// aside, a name is allowed when it is an allowed domain or lies under one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace blade::network {

// Why `name` is not a host name (labels of letters, digits and '-', not
// starting or ending with '-', 1-63 characters each, joined by dots, 253
// characters at most), or "" when it is one.
std::string hostname_problem(std::string_view name);

// The lower-case form of a name (DNS compares names case-insensitively).
std::string lower_name(std::string_view name);

// True when `name` (lower case, no trailing dot) is one of `allowed` (lower
// case) or a subdomain of one: "api.example.com" is under "example.com",
// "badexample.com" is not.
bool name_is_allowed(std::string_view name, const std::vector<std::string> &allowed);

}  // namespace blade::network
