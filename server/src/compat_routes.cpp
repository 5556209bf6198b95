// PLACEHOLDER (helper "compat" replaces this file): /api/v1/... and /chaosblade.
#include "http_server.hpp"

namespace blade::server {

void HttpServer::install_compat_routes() {}

}  // namespace blade::server
