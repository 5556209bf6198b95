// Reading a request header without the copy get_header_value makes: the
// per-request paths (the token, the request id) only look at it.
#pragma once

#include <string>

#include <httplib.h>

namespace blade::server {

// The first value of header `name`, as get_header_value reads it; null when
// the request has none.
inline const std::string *header_value(const httplib::Request &req, const std::string &name) {
  const auto found = req.headers.equal_range(name);
  return found.first == found.second ? nullptr : &found.first->second;
}

}  // namespace blade::server
