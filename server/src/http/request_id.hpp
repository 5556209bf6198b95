// The id each request is answered and audited under (X-Request-Id).
#pragma once

#include <string>

#include <httplib.h>

namespace blade::server {

// The request's id: the client's X-Request-Id when it is short and plain
// ([A-Za-z0-9._-], at most 64), else a fresh one, made as uids are
// (new_uid: no system call per id).
std::string request_id_for(const httplib::Request &req);

}  // namespace blade::server
