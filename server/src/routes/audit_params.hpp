// What the audit log keeps of an HTTP request besides its route: the
// request id, the query and the body.
#pragma once

#include <string>

#include <httplib.h>

namespace blade::server {

// {"request_id": ..., "query": {...}, "body": ...} as one JSON text. The
// body is kept as the client wrote it when it is JSON of at most 4 KiB,
// else as "<N bytes>"; in the query, bytes that are not UTF-8 are
// replaced, never refused.
std::string audit_params_json(const httplib::Request &req, const std::string &request_id);

}  // namespace blade::server
