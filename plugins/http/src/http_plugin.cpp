// The http plugin: an HTTP/1.1 fault proxy inside the daemon (`http proxy`,
// `http delay`, `http abort`), built on the SDK like any third-party plugin.
#include <cstddef>
#include <memory>

#include <nlohmann/json.hpp>

#include "proxy_faults.hpp"

namespace blade::http {

// Generated from spec-yaml/http.yaml at build time.
extern const unsigned char kSpecYaml[];

namespace {

// The event loop's threads, from the plugin's section of the daemon's
// configuration (`plugins: http: {io_threads: N}`).
std::size_t io_threads(const sdk::Host &host) {
  const auto config = nlohmann::json::parse(host.config_json(), nullptr, false);
  if (config.is_object() && config.contains("io_threads") &&
      config["io_threads"].is_number_unsigned())
    return config["io_threads"].get<std::size_t>();
  return 2;
}

class HttpPlugin : public sdk::FaultRouter {
 public:
  // Every call keeps its state in the fleet, which locks what it shares.
  static constexpr bool concurrent_calls = true;
  static constexpr const char *config_schema = R"json({
    "type": "object",
    "additionalProperties": false,
    "properties": {
      "io_threads": {"type": "integer", "minimum": 1, "maximum": 16, "default": 2,
                     "description": "threads running every proxy of the plugin (their sockets and timers)"}
    }
  })json";

  explicit HttpPlugin(sdk::Host host)
      : FaultRouter("http"), fleet_(std::make_unique<ProxyFleet>(io_threads(host))) {
    add_proxy_faults(*this, host, *fleet_);
  }

 private:
  std::unique_ptr<ProxyFleet> fleet_;
};

}  // namespace
}  // namespace blade::http

BLADE_PLUGIN(blade::http::HttpPlugin, "http", "0.1.0",
             reinterpret_cast<const char *>(blade::http::kSpecYaml))
