// The id each request is answered and audited under (X-Request-Id).
#pragma once

#include <string>

#include <httplib.h>

namespace blade::server {

// The request's id: the client's X-Request-Id when it is short and plain
// ([A-Za-z0-9._-], at most 64), else a fresh one.
std::string request_id_for(const httplib::Request &req);

// 16 hex digits from a per-thread generator seeded once from the kernel: an
// id only correlates log, audit and response, so it needs to be unique, not
// secret, and a getrandom call per request bought nothing.
std::string fresh_request_id();

}  // namespace blade::server
