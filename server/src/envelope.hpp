// The response envelope {"code","message","data"} and the error matrix of
// API.md: the one place core errors become HTTP statuses.
#pragma once

#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "blade/core/error.hpp"

namespace blade::server {

// HTTP status for a core error code (API.md's matrix).
int http_status(ErrorCode code);

void send_ok(httplib::Response &res, int status, nlohmann::json data);
void send_error(httplib::Response &res, const Error &error);

}  // namespace blade::server
