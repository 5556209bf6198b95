// The body of the /api/v1 service API's POST /api/v1/preparations, which names the
// preparation type `target` where the native body says `type`.
#pragma once

#include <string>

namespace blade::server {

// The body with `target` renamed to `type`, for parse_prepare_request; a
// body that is not a JSON object with `target` is returned as it is (the
// native parser then judges it). Throws Error(InvalidArgument) on field
// "target" when both are given.
std::string with_type_field(const std::string &body);

}  // namespace blade::server
