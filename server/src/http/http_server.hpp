// The HTTP face of bladed: the routes of docs/http-api.md over the core. Every route is
// registered through route(), which gives it the same request id, auth, rate
// limit, audit, metrics and error handling.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <httplib.h>

#include "blade/core/experiment/experiment_service.hpp"
#include "blade/core/model/error.hpp"
#include "connection_pool.hpp"
#include "daemon/config.hpp"
#include "daemon/daemon.hpp"
#include "rate_limiter.hpp"
#include "request_id.hpp"
#include "routes/metrics.hpp"
#include "tokens.hpp"

namespace blade::server {

template <class Base>
class PooledServer;  // http_server.cpp
class ConfigFrames;  // config_stream_route.cpp

// Who may call a route.
enum class Access {
  Public,  // no token (health only)
  Read,    // any valid token
  Admin,   // a token with the admin role (mutations, the audit log)
};

// What route() knows about the request in hand; handlers may add to it.
struct RequestContext {
  std::string id;     // echoed as X-Request-Id
  std::string route;  // the declared pattern, e.g. "/v1/experiments/{uid}"
  Caller caller;      // token name (never the token) and remote address
  Role role = Role::Viewer;
  // Audited when set, whatever the method (a GET /chaosblade?cmd=create is).
  bool mutating = false;
  std::string error_code;  // the error answered, for the audit line
};

// Writes an error in a route's own response shape (the envelope, or
// ChaosBlade's Response for the compatibility routes).
using ErrorWriter = std::function<void(httplib::Response &, const Error &)>;
using RouteHandler =
    std::function<void(const httplib::Request &, httplib::Response &, RequestContext &)>;

// The query parameters a route reads; any other is refused with 400 before
// its handler runs, so a misspelt or unsupported one (?dry_run=true on a
// create) never passes for honoured.
using QueryNames = std::vector<std::string>;

struct RouteInfo {
  std::string method;
  std::string path;  // OpenAPI style: /v1/experiments/{uid}
  Access access;
  QueryNames query;
};

class HttpServer {
 public:
  // Bodies above this are refused with 413.
  static constexpr std::size_t kMaxBody = 1024 * 1024;

  // Throws std::runtime_error for TLS files that cannot be used.
  HttpServer(const Config &config, Daemon &daemon);
  ~HttpServer();

  // Binds the configured address; returns the port actually bound (useful
  // with port 0). Throws std::runtime_error naming the address on failure.
  int bind();
  // Serves until stop() (connection_pool.hpp); call after bind().
  void run();
  // Blocks until run() is accepting, or stop() was called.
  void wait_until_running() const;
  // Thread-safe; ends event streams and makes run() return.
  void stop();

  // Requests answered by a route so far.
  std::uint64_t requests_served() const { return served_.load(std::memory_order_relaxed); }

  // Every route registered, for the OpenAPI document's test.
  const std::vector<RouteInfo> &routes() const { return routes_; }

  // Throws Error(PermissionDenied) unless the caller's role allows `access`.
  static void require(const RequestContext &ctx, Access access);

 private:
  // `path` is written OpenAPI style; {name} segments match one path segment.
  void route(const std::string &method, const std::string &path, Access access, QueryNames query,
             RouteHandler handler, ErrorWriter on_error = {});
  void handle(const httplib::Request &req, httplib::Response &res, RequestContext &ctx,
              const RouteInfo &info, const RouteHandler &handler, const ErrorWriter &on_error);
  // Sets ctx.caller.actor and ctx.role and returns the caller's token (null
  // without auth); throws Error(Unauthenticated) otherwise.
  const ApiToken *authenticate(const httplib::Request &req, RequestContext &ctx);
  void audit(const httplib::Request &req, const httplib::Response &res, const RequestContext &ctx);

  void install_basic_routes();        // health, plugins, specs: plugin_routes.cpp
  void install_experiment_routes();   // experiment_routes.cpp
  void install_preparation_routes();  // preparation_routes.cpp
  void install_event_routes();        // event_routes.cpp
  void install_metrics_routes();      // metrics_routes.cpp
  void install_compat_routes();       // compat_routes.cpp
  void install_audit_routes();        // audit_routes.cpp
  void install_policy_routes();       // policy_routes.cpp
  void install_config_stream_route(); // config_stream_route.cpp
  void install_openapi_route();       // openapi_route.cpp
  void install_fallbacks();
  // Sets http_, serve_request_, take_socket_ and tls_ (for --tls-cert).
  void make_server();
  template <class Base>
  void adopt(std::unique_ptr<PooledServer<Base>> server);

  const Config &config_;
  Daemon &daemon_;
  TokenTable tokens_;
  RateLimiter limiter_;
  Metrics metrics_;
  // httplib parses requests and routes them; the pool owns the sockets.
  std::unique_ptr<httplib::Server> http_;
  ConnectionPool::ServeRequest serve_request_;
  std::function<int()> take_socket_;
  SSL_CTX *tls_ = nullptr;
  std::unique_ptr<ConnectionPool> pool_;
  int listen_fd_ = -1;
  std::vector<RouteInfo> routes_;

  // Event and config streams wait on this; stop() wakes them so run() can
  // return.
  std::atomic<bool> stopping_{false};
  std::mutex stream_mutex_;
  std::condition_variable stream_cv_;
  std::atomic<int> open_streams_{0};         // GET /v1/events
  std::atomic<int> open_config_streams_{0};  // GET /v1/config/stream
  std::shared_ptr<ConfigFrames> config_frames_;  // the rule set as the streams write it
  std::atomic<std::uint64_t> served_{0};
};

}  // namespace blade::server
