// The HTTP face of bladed: routes of API.md over the core, behind auth.
#pragma once

#include <memory>
#include <string>

#include <httplib.h>

#include "blade/core/experiment_service.hpp"
#include "blade/core/registry.hpp"
#include "config.hpp"

namespace blade::server {

class HttpServer {
 public:
  // Bodies above this are refused with 413.
  static constexpr std::size_t kMaxBody = 1024 * 1024;

  HttpServer(const Config &config, const Registry &registry, ExperimentService &service);

  // Binds the configured address; returns the port actually bound (useful
  // with port 0). Throws std::runtime_error naming the address on failure.
  int bind();
  // Serves until stop(); call after bind().
  void run();
  // Blocks until run() is accepting (a stop() before that would be lost).
  void wait_until_running() const;
  // Thread-safe; makes run() return.
  void stop();

 private:
  void install_routes();
  void install_experiment_routes();  // experiment_routes.cpp
  // Who is calling, for the audit log (never the token itself).
  Caller caller_of(const httplib::Request &req) const;
  // True if the request may proceed; otherwise the response is written.
  bool authorised(const httplib::Request &req, httplib::Response &res) const;

  const Config &config_;
  const Registry &registry_;
  ExperimentService &service_;
  httplib::Server http_;
};

}  // namespace blade::server
