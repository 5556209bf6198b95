// The OpenAPI document of bladed's HTTP API (server/openapi.yaml), built into
// the binary so the daemon serves the document of exactly its own routes.
#pragma once

#include <string_view>

namespace blade::server {

std::string_view openapi_document();

}  // namespace blade::server
