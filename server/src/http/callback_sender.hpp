// The HTTP side of experiment callbacks: one POST of the experiment JSON.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace blade::server {

// POSTs `body` as application/json to `url`; nullopt on a 2xx answer, else
// what went wrong. Never follows redirects (a callback URL is exact).
std::optional<std::string> post_callback(const std::string &url, const std::string &body,
                                         std::chrono::seconds timeout = std::chrono::seconds(5));

}  // namespace blade::server
