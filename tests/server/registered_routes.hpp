// The routes bladed registers, read from an HttpServer built in-process and
// never started: the tests that must cover every route take their list here.
#pragma once

#include <vector>

#include "../support/temp_dir.hpp"
#include "bladed_process.hpp"
#include "daemon/config.hpp"
#include "daemon/daemon.hpp"
#include "http/http_server.hpp"

namespace blade::test {

inline std::vector<blade::server::RouteInfo> registered_routes() {
  TempDir dir("registered-routes");
  blade::server::Config config;
  config.port = 0;
  config.token = kToken;
  config.state_dir = dir / "state";
  config.sqlite_path = dir / "blade.db";
  blade::server::Daemon daemon(config);
  blade::server::HttpServer server(config, daemon);
  return server.routes();
}

}  // namespace blade::test
