// Token authentication. The token is compared in constant time so response
// timing does not reveal how much of a guess was right.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <httplib.h>

namespace blade::server {

// The token a request carries: X-Api-Token, or Authorization: Bearer. A
// view into the request's headers, valid while the request is.
std::optional<std::string_view> request_token(const httplib::Request &req);

// Equality whose running time depends only on the lengths.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace blade::server
