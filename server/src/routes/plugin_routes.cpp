// Health, plugins and specs: what this daemon can do.
#include <fmt/format.h>

#include "blade/core/plugin/executor_router.hpp"
#include "blade/core/plugin/plugin_json.hpp"
#include "build_info.hpp"
#include "http/envelope.hpp"
#include "http/http_server.hpp"

namespace blade::server {

void HttpServer::install_basic_routes() {
  route("GET", "/v1/health", Access::Public, {},
        [this](const httplib::Request &, httplib::Response &res, RequestContext &) {
          send_ok(res, 200,
                  {{"status", "up"},
                   {"version", BLADE_VERSION},
                   {"plugins", daemon_.registry().loaded_count()}});
        });

  route("GET", "/v1/plugins", Access::Read, {},
        [this](const httplib::Request &, httplib::Response &res, RequestContext &) {
          nlohmann::json items = nlohmann::json::array();
          for (const auto &record : daemon_.registry().records())
            items.push_back(to_json(record));
          send_ok(res, 200, items);
        });

  route("GET", "/v1/plugins/{name}/spec", Access::Read, {},
        [this](const httplib::Request &req, httplib::Response &res, RequestContext &) {
          const std::string name = req.matches[1];
          auto plugin = daemon_.registry().find_plugin(name);
          if (!plugin)
            throw Error(ErrorCode::NotFound, fmt::format("no loaded plugin named '{}'", name));
          res.set_content(plugin->spec_yaml(), "application/yaml");
        });

  route("POST", "/v1/plugins/reload", Access::Admin, {},
        [this](const httplib::Request &, httplib::Response &res, RequestContext &) {
          auto report = daemon_.reload_plugins();
          nlohmann::json kept = nlohmann::json::array();
          for (const auto &k : report.kept)
            kept.push_back({{"name", k.name}, {"reason", k.reason}});
          nlohmann::json refused = nlohmann::json::array();
          for (const auto &r : report.refused)
            refused.push_back(to_json(r));
          send_ok(res, 200,
                  {{"loaded", report.loaded},
                   {"unloaded", report.unloaded},
                   {"kept", kept},
                   {"refused", refused}});
        });

  route("GET", "/v1/specs", Access::Read, {},
        [this](const httplib::Request &, httplib::Response &res, RequestContext &) {
          // As create routes: with --exec-mode external, an action both a
          // plugin and a spec file serve lists the external executor.
          send_ok(res, 200, catalogue_json(daemon_.router().catalogue()));
        });
}

}  // namespace blade::server
