// GET /metrics: the Prometheus text exposition of Metrics.
#include "http/http_server.hpp"

namespace blade::server {

void HttpServer::install_metrics_routes() {
  // Behind a token like every route but health (docs/http-api.md), though it holds no
  // secrets: a scraper is given a viewer token.
  route("GET", "/metrics", Access::Read, {},
        [this](const httplib::Request &, httplib::Response &res, RequestContext &) {
          res.set_content(metrics_.render(), "text/plain; version=0.0.4; charset=utf-8");
        });
}

}  // namespace blade::server
