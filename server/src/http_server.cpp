#include "http_server.hpp"

#include <chrono>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "auth.hpp"
#include "blade/core/error.hpp"
#include "blade/core/log.hpp"
#include "build_info.hpp"
#include "envelope.hpp"
#include "plugin_json.hpp"

namespace blade::server {

HttpServer::HttpServer(const Config &config, const Registry &registry, ExperimentService &service)
    : config_(config), registry_(registry), service_(service) {
  http_.set_payload_max_length(kMaxBody);
  install_routes();
  install_experiment_routes();
}

Caller HttpServer::caller_of(const httplib::Request &req) const {
  // One token today, so one identity; named tokens arrive with roles.
  return Caller{config_.no_auth ? "anonymous" : "token", req.remote_addr};
}

bool HttpServer::authorised(const httplib::Request &req, httplib::Response &res) const {
  if (config_.no_auth) return true;
  auto token = request_token(req);
  if (!token) {
    send_error(res, Error(ErrorCode::Unauthenticated,
                          "missing API token: send X-Api-Token or Authorization: Bearer"));
    return false;
  }
  if (!constant_time_equal(*token, config_.token)) {
    log::warn("authentication failed", {{"remote", req.remote_addr}, {"route", req.path}});
    send_error(res, Error(ErrorCode::Unauthenticated, "invalid API token"));
    return false;
  }
  return true;
}

void HttpServer::install_routes() {
  http_.Get("/v1/health", [this](const httplib::Request &, httplib::Response &res) {
    send_ok(res, 200,
            {{"status", "up"}, {"version", BLADE_VERSION}, {"plugins", registry_.loaded_count()}});
  });

  http_.Get("/v1/plugins", [this](const httplib::Request &req, httplib::Response &res) {
    if (!authorised(req, res)) return;
    nlohmann::json items = nlohmann::json::array();
    for (const auto &record : registry_.records())
      items.push_back(to_json(record));
    send_ok(res, 200, items);
  });

  // Unknown routes get the envelope too, not httplib's empty 404.
  http_.set_error_handler([](const httplib::Request &req, httplib::Response &res) {
    if (!res.body.empty()) return;
    if (res.status == 404) {
      send_error(res,
                 Error(ErrorCode::NotFound, fmt::format("no route {} {}", req.method, req.path)));
    } else if (res.status == 413) {
      send_error(
          res,
          Error(ErrorCode::InvalidArgument, "body: larger than 1 MiB", {{"body", "too large"}}),
          nullptr, 413);
    }
  });

  // An escaped exception is a bug: answer 500 without internals, log it.
  http_.set_exception_handler(
      [](const httplib::Request &req, httplib::Response &res, std::exception_ptr ep) {
        std::string what = "unknown";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception &e) {
          what = e.what();
        } catch (...) {
        }
        log::error("handler failed", {{"route", req.path}, {"error", what}});
        send_error(res, Error(ErrorCode::Internal, "internal error"));
      });
}

int HttpServer::bind() {
  int port = config_.port;
  if (port == 0) {
    port = http_.bind_to_any_port(config_.bind);
    if (port < 0) throw std::runtime_error(fmt::format("cannot bind {}:0", config_.bind));
  } else if (!http_.bind_to_port(config_.bind, port)) {
    throw std::runtime_error(fmt::format(
        "cannot bind {}:{} (in use, or not an address of this host)", config_.bind, port));
  }
  return port;
}

void HttpServer::run() {
  http_.listen_after_bind();
}

void HttpServer::wait_until_running() const {
  while (!http_.is_running())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void HttpServer::stop() {
  http_.stop();
}

}  // namespace blade::server
