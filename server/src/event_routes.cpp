// PLACEHOLDER (helper "events-metrics" replaces this file): GET /v1/events.
#include "http_server.hpp"

namespace blade::server {

void HttpServer::install_event_routes() {}

}  // namespace blade::server
