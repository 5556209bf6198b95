// PLACEHOLDER (helper "events-metrics" replaces this file): GET /metrics.
#include "http_server.hpp"

namespace blade::server {

void HttpServer::install_metrics_routes() {}

}  // namespace blade::server
