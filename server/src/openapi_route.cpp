// PLACEHOLDER (helper "openapi" replaces this file): GET /v1/openapi.yaml.
#include "http_server.hpp"

namespace blade::server {

void HttpServer::install_openapi_route() {}

}  // namespace blade::server
