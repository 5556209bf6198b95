#include "http_server.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <regex>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "auth.hpp"
#include "blade/core/model/bounded_json.hpp"
#include "blade/core/model/experiment.hpp"
#include "blade/core/model/log.hpp"
#include "envelope.hpp"
#include "routes/audit_params.hpp"

namespace blade::server {
namespace {

using Clock = std::chrono::steady_clock;

// "/v1/experiments/{uid}" -> "/v1/experiments/([^/]+)"
std::string path_regex(const std::string &path) {
  static const std::regex param(R"(\{[^/}]+\})");
  return std::regex_replace(path, param, "([^/]+)");
}

// After authentication, so a caller without a token learns nothing of a
// route's parameters. httplib puts a form body's fields (POST /chaosblade)
// in the same map: they are parameters of the route as well.
void refuse_unknown_query(const httplib::Request &req, const QueryNames &accepted) {
  for (const auto &[name, value] : req.params) {
    if (std::find(accepted.begin(), accepted.end(), name) != accepted.end()) continue;
    const std::string description =
        accepted.empty() ? "unknown query parameter: this route takes none"
                         : fmt::format("unknown query parameter: this route takes {}",
                                       fmt::join(accepted, ", "));
    throw Error(ErrorCode::InvalidArgument, fmt::format("{}: {}", name, description),
                {{name, description}});
  }
}

ConnectionLimits connection_limits(const Config &config) {
  ConnectionLimits l;
  l.max_connections = config.max_connections;
  l.max_per_address = config.max_connections_per_address;
  l.request_timeout = std::chrono::seconds(config.read_timeout);
  l.keep_alive_timeout = std::chrono::seconds(config.keep_alive_timeout);
  l.write_timeout = std::chrono::seconds(config.write_timeout);
  // A CLI or console polling over one connection should not reconnect
  // every 5 requests (httplib's default).
  l.keep_alive_max = 1000;
  l.ready_threads = config.http_threads;
  return l;
}

}  // namespace

// httplib's server with its request parsing and routing (process_request,
// protected) reachable by the ConnectionPool, which serves the sockets.
template <class Base>
class PooledServer : public Base {
 public:
  using Base::Base;
  bool serve(httplib::Stream &stream, bool close_connection, bool &connection_closed) {
    return this->process_request(stream, close_connection, connection_closed, nullptr);
  }
  // A second descriptor of the socket bind_to_port() made: httplib's own
  // loop never runs. Its own stays open, because httplib reads an invalid
  // one as "shutting down" and then ends every chunked response (the event
  // streams) before its first chunk.
  int take_listening_socket() { return ::dup(this->svr_sock_.load()); }
  ~PooledServer() override {
    const auto sock = this->svr_sock_.exchange(INVALID_SOCKET);
    if (sock != INVALID_SOCKET) ::close(sock);
  }
};

template <class Base>
void HttpServer::adopt(std::unique_ptr<PooledServer<Base>> server) {
  auto *raw = server.get();
  serve_request_ = [raw](httplib::Stream &s, bool close, bool &closed) {
    return raw->serve(s, close, closed);
  };
  take_socket_ = [raw] { return raw->take_listening_socket(); };
  http_ = std::move(server);
}

void HttpServer::make_server() {
  if (config_.tls_cert.empty()) return adopt(std::make_unique<PooledServer<httplib::Server>>());
  auto server = std::make_unique<PooledServer<httplib::SSLServer>>(config_.tls_cert.c_str(),
                                                                    config_.tls_key.c_str());
  if (!server->is_valid()) {
    throw std::runtime_error(
        fmt::format("tls-cert, tls-key: cannot use {} with {} (unreadable, not PEM, or not a pair)",
                    config_.tls_cert.string(), config_.tls_key.string()));
  }
  tls_ = server->ssl_context();
  adopt(std::move(server));
}

HttpServer::HttpServer(const Config &config, Daemon &daemon)
    : config_(config),
      daemon_(daemon),
      tokens_(config.all_tokens()),
      metrics_(daemon.store(), daemon.events(), &daemon.counters()) {
  make_server();
  http_->set_payload_max_length(kMaxBody);
  pool_ = std::make_unique<ConnectionPool>(connection_limits(config), tls_, serve_request_);
  // httplib tries a method's routes in registration order, one regex each:
  // the experiment routes, the hot path, go first (no two patterns overlap,
  // so the order changes nothing else).
  install_experiment_routes();
  install_basic_routes();
  install_preparation_routes();
  install_event_routes();
  install_metrics_routes();
  install_compat_routes();
  install_audit_routes();
  install_policy_routes();
  install_config_stream_route();
  install_openapi_route();
  install_fallbacks();
}

HttpServer::~HttpServer() {
  pool_.reset();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void HttpServer::require(const RequestContext &ctx, Access access) {
  if (access == Access::Admin && ctx.role != Role::Admin) {
    throw Error(ErrorCode::PermissionDenied,
                fmt::format("token '{}' has the {} role, which may only read", ctx.caller.actor,
                            to_string(ctx.role)));
  }
}

void HttpServer::route(const std::string &method, const std::string &path, Access access,
                       QueryNames query, RouteHandler handler, ErrorWriter on_error) {
  RouteInfo info{method, path, access, std::move(query)};
  routes_.push_back(info);
  if (!on_error) on_error = [](httplib::Response &res, const Error &e) { send_error(res, e); };
  auto serve = [this, info = std::move(info), handler = std::move(handler),
                on_error = std::move(on_error)](const httplib::Request &req,
                                                httplib::Response &res) {
    RequestContext ctx;
    ctx.route = info.path;
    handle(req, res, ctx, info, handler, on_error);
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
                        const RouteInfo &info, const RouteHandler &handler,
                        const ErrorWriter &on_error) {
  const Access access = info.access;
  const auto start = Clock::now();
  ctx.id = request_id_for(req);
  ctx.caller.remote = req.remote_addr;
  if (req.method != "GET") ctx.mutating = true;
  try {
    if (access != Access::Public) {
      const ApiToken *token = authenticate(req, ctx);
      const double rate = token && token->rate_limit ? *token->rate_limit : config_.rate_limit;
      if (rate > 0 && !limiter_.allow("token:" + ctx.caller.actor, rate)) {
        throw Error(ErrorCode::ResourceExhausted,
                    fmt::format("rate limit: token '{}' may send {} requests per second",
                                ctx.caller.actor, rate));
      }
      require(ctx, access);
    }
    refuse_unknown_query(req, info.query);
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
  // The fields are copies and formats: not made for a level that drops them.
  const auto level = ctx.mutating ? log::Level::Info : log::Level::Debug;
  if (!log::enabled(level)) return;
  const auto ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  log::write(level, "request",
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
  daemon_.store().queue_audit(std::move(a));
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
  listen_fd_ = take_socket_();
  // httplib listens with a backlog of 5: a burst of connections (or an
  // attack) would have SYNs dropped and retried a second later.
  ::listen(listen_fd_, SOMAXCONN);
  return port;
}

void HttpServer::run() {
  if (listen_fd_ >= 0) pool_->run(listen_fd_);
}

void HttpServer::wait_until_running() const {
  while (!pool_->running() && !stopping_)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void HttpServer::stop() {
  {
    std::lock_guard lock(stream_mutex_);
    stopping_ = true;
  }
  stream_cv_.notify_all();
  pool_->stop();
}

}  // namespace blade::server
