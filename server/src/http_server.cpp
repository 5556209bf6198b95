#include "http_server.hpp"

#include <chrono>
#include <regex>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "audit_params.hpp"
#include "auth.hpp"
#include "blade/core/experiment.hpp"
#include "blade/core/log.hpp"
#include "envelope.hpp"

namespace blade::server {
namespace {

using Clock = std::chrono::steady_clock;

// "/v1/experiments/{uid}" -> "/v1/experiments/([^/]+)"
std::string path_regex(const std::string &path) {
  static const std::regex param(R"(\{[^/}]+\})");
  return std::regex_replace(path, param, "([^/]+)");
}

std::unique_ptr<httplib::Server> make_server(const Config &config) {
  if (config.tls_cert.empty()) return std::make_unique<httplib::Server>();
  auto server =
      std::make_unique<httplib::SSLServer>(config.tls_cert.c_str(), config.tls_key.c_str());
  if (!server->is_valid()) {
    throw std::runtime_error(
        fmt::format("tls-cert, tls-key: cannot use {} with {} (unreadable, not PEM, or not a pair)",
                    config.tls_cert.string(), config.tls_key.string()));
  }
  return server;
}

}  // namespace

std::string request_id_for(const httplib::Request &req) {
  const std::string given = req.get_header_value("X-Request-Id");
  bool plain = !given.empty() && given.size() <= 64;
  for (char c : given) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      plain = false;
      break;
    }
  }
  return plain ? given : new_uid();
}

HttpServer::HttpServer(const Config &config, Daemon &daemon)
    : config_(config),
      daemon_(daemon),
      tokens_(config.all_tokens()),
      metrics_(daemon.store(), daemon.events()),
      audit_queue_(daemon.store()),
      http_(make_server(config)) {
  http_->set_payload_max_length(kMaxBody);
  http_->set_read_timeout(config.read_timeout, 0);
  http_->set_write_timeout(config.write_timeout, 0);
  http_->set_keep_alive_timeout(5);
  // httplib writes headers and body separately; with Nagle on, the body
  // waits for the client's delayed ACK (~40 ms a response).
  http_->set_tcp_nodelay(true);
  // A CLI or console polling over one connection should not reconnect
  // every 5 requests (httplib's default).
  http_->set_keep_alive_max_count(1000);
  const int threads = config.http_threads;
  http_->new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<std::size_t>(threads));
  };
  install_basic_routes();
  install_experiment_routes();
  install_preparation_routes();
  install_event_routes();
  install_metrics_routes();
  install_compat_routes();
  install_audit_routes();
  install_openapi_route();
  install_fallbacks();
}

HttpServer::~HttpServer() = default;

void HttpServer::require(const RequestContext &ctx, Access access) {
  if (access == Access::Admin && ctx.role != Role::Admin) {
    throw Error(ErrorCode::PermissionDenied,
                fmt::format("token '{}' has the {} role, which may only read", ctx.caller.actor,
                            to_string(ctx.role)));
  }
}

void HttpServer::route(const std::string &method, const std::string &path, Access access,
                       RouteHandler handler, ErrorWriter on_error) {
  routes_.push_back({method, path, access});
  if (!on_error) on_error = [](httplib::Response &res, const Error &e) { send_error(res, e); };
  auto serve = [this, path, access, handler = std::move(handler), on_error = std::move(on_error)](
                   const httplib::Request &req, httplib::Response &res) {
    RequestContext ctx;
    ctx.route = path;
    handle(req, res, ctx, access, handler, on_error);
  };
  const std::string pattern = path_regex(path);
  if (method == "GET") {
    http_->Get(pattern, serve);
  } else if (method == "POST") {
    http_->Post(pattern, serve);
  } else if (method == "DELETE") {
    http_->Delete(pattern, serve);
  } else if (method == "PUT") {
    http_->Put(pattern, serve);
  } else {
    throw std::logic_error("route: unsupported method " + method);
  }
}

const ApiToken *HttpServer::authenticate(const httplib::Request &req, RequestContext &ctx) {
  if (config_.no_auth) {
    ctx.caller.actor = "anonymous";
    ctx.role = Role::Admin;
    return nullptr;
  }
  auto auth = tokens_.authenticate(request_token(req), std::chrono::system_clock::now());
  if (auth.outcome == Authentication::Outcome::Ok) {
    ctx.caller.actor = auth.token->name;
    ctx.role = auth.token->role;
    return auth.token;
  }
  // Failures are audited; a client guessing fast is slowed down per address
  // (and not audited past the limit, so it cannot flood the audit log).
  ctx.mutating = limiter_.allow("remote:" + req.remote_addr, config_.auth_failure_rate);
  ctx.caller.actor = auth.token ? auth.token->name : "unauthenticated";
  if (!ctx.mutating) {
    throw Error(ErrorCode::ResourceExhausted,
                fmt::format("too many failed authentications from {}", req.remote_addr));
  }
  switch (auth.outcome) {
    case Authentication::Outcome::Missing:
      throw Error(ErrorCode::Unauthenticated,
                  "missing API token: send X-Api-Token or Authorization: Bearer");
    case Authentication::Outcome::Expired:
      throw Error(ErrorCode::Unauthenticated,
                  fmt::format("API token '{}' has expired", auth.token->name));
    default:
      throw Error(ErrorCode::Unauthenticated, "invalid API token");
  }
}

void HttpServer::handle(const httplib::Request &req, httplib::Response &res, RequestContext &ctx,
                        Access access, const RouteHandler &handler, const ErrorWriter &on_error) {
  const auto start = Clock::now();
  ctx.id = request_id_for(req);
  ctx.caller.remote = req.remote_addr;
  if (req.method != "GET") ctx.mutating = true;
  try {
    if (access != Access::Public) {
      const ApiToken *token = authenticate(req, ctx);
      const double rate = token && token->rate_limit ? *token->rate_limit : config_.rate_limit;
      if (!limiter_.allow("token:" + ctx.caller.actor, rate)) {
        throw Error(ErrorCode::ResourceExhausted,
                    fmt::format("rate limit: token '{}' may send {} requests per second",
                                ctx.caller.actor, rate));
      }
      require(ctx, access);
    }
    handler(req, res, ctx);
    // httplib leaves the status unset (-1) until it writes; metrics and the
    // audit want the real one.
    if (res.status == -1) res.status = 200;
  } catch (const Error &e) {
    ctx.error_code = std::string(to_string(e.code()));
    on_error(res, e);
  } catch (const std::exception &e) {
    // A bug: logged with the request id, answered without internals.
    log::error("handler failed",
               {{"request_id", ctx.id}, {"route", ctx.route}, {"error", e.what()}});
    ctx.error_code = "INTERNAL";
    on_error(res, Error(ErrorCode::Internal, "internal error (request " + ctx.id + ")"));
  }
  res.set_header("X-Request-Id", ctx.id);
  served_.fetch_add(1, std::memory_order_relaxed);
  metrics_.observe_request(req.method, ctx.route, res.status);
  if (ctx.mutating) audit(req, res, ctx);
  const auto ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  log::write(ctx.mutating ? log::Level::Info : log::Level::Debug, "request",
             {{"request_id", ctx.id},
              {"method", req.method},
              {"path", req.path},
              {"status", std::to_string(res.status)},
              {"actor", ctx.caller.actor},
              {"remote", req.remote_addr},
              {"ms", fmt::format("{:.2f}", ms)}});
}

void HttpServer::audit(const httplib::Request &req, const httplib::Response &res,
                       const RequestContext &ctx) {
  AuditEntry a;
  a.time = std::chrono::system_clock::now();
  a.actor = ctx.caller.actor;
  a.remote = req.remote_addr;
  a.action = ctx.error_code == "UNAUTHENTICATED" ? "auth.failure" : "http.request";
  a.subject = req.method + " " + req.path;
  a.params_json = audit_params_json(req, ctx.id);
  a.outcome = ctx.error_code.empty() ? std::to_string(res.status)
                                     : fmt::format("{} {}", res.status, ctx.error_code);
  audit_queue_.append(std::move(a));
}

void HttpServer::install_fallbacks() {
  // A request with neither Content-Length nor Transfer-Encoding has no body
  // (RFC 9112, 6.3), but httplib 0.11 reads a POST's body until the client
  // closes: `curl -X POST .../reload` stalled for the read timeout, then got
  // 400. Saying "no body" in its headers before httplib reads fixes that;
  // the request object is ours to change until routing starts, whatever the
  // callback's const says.
  http_->set_pre_routing_handler([](const httplib::Request &req, httplib::Response &) {
    if (!req.has_header("Content-Length") && !req.has_header("Transfer-Encoding"))
      const_cast<httplib::Request &>(req).headers.emplace("Content-Length", "0");
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Unknown routes and bodies over the limit get the envelope too, not
  // httplib's empty answer.
  http_->set_error_handler([this](const httplib::Request &req, httplib::Response &res) {
    if (!res.has_header("X-Request-Id")) res.set_header("X-Request-Id", request_id_for(req));
    if (!res.body.empty()) return;
    if (res.status == 404) {
      send_error(res,
                 Error(ErrorCode::NotFound, fmt::format("no route {} {}", req.method, req.path)));
    } else if (res.status == 413) {
      send_error(
          res,
          Error(ErrorCode::InvalidArgument, "body: larger than 1 MiB", {{"body", "too large"}}),
          nullptr, 413);
    } else if (res.status == 400) {
      send_error(res, Error(ErrorCode::InvalidArgument, "malformed HTTP request"));
    }
    metrics_.observe_request(req.method, "unmatched", res.status);
  });

  // A backstop: route() catches everything, but httplib can throw outside it.
  http_->set_exception_handler(
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
    port = http_->bind_to_any_port(config_.bind);
    if (port < 0) throw std::runtime_error(fmt::format("cannot bind {}:0", config_.bind));
  } else if (!http_->bind_to_port(config_.bind, port)) {
    throw std::runtime_error(fmt::format(
        "cannot bind {}:{} (in use, or not an address of this host)", config_.bind, port));
  }
  return port;
}

void HttpServer::run() {
  http_->listen_after_bind();
}

void HttpServer::wait_until_running() const {
  while (!http_->is_running())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void HttpServer::stop() {
  {
    std::lock_guard lock(stream_mutex_);
    stopping_ = true;
  }
  stream_cv_.notify_all();
  http_->stop();
}

}  // namespace blade::server
