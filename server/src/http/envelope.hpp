// The response envelope {"code","message","data"} and the error matrix of
// docs/http-api.md: the one place core errors become HTTP statuses.
#pragma once

#include <string>
#include <string_view>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "blade/core/model/error.hpp"

namespace blade::server {

// HTTP status for a core error code (the error matrix of docs/http-api.md).
int http_status(ErrorCode code);

void send_ok(httplib::Response &res, int status, const nlohmann::json &data);
// The same envelope around data already serialized (one JSON text, as the
// core wrote it once for the store, the event and the response alike): the
// text is spliced in, never parsed or rebuilt.
void send_ok_text(httplib::Response &res, int status, std::string_view data_json);
// The error envelope; `data` (e.g. the failed experiment) when given, and
// `status` to override the matrix (413 for an oversized body).
void send_error(httplib::Response &res, const Error &error, const nlohmann::json &data = nullptr,
                int status = 0);

}  // namespace blade::server
