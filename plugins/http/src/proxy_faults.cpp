#include "proxy_faults.hpp"

#include <chrono>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../common/go_duration.hpp"
#include "endpoint.hpp"

namespace blade::http {
namespace {

using nlohmann::json;

// Past an hour a drain or an upstream wait is a mistake, not a setting.
constexpr long double kMaxWaitNs = 3600.0L * 1e9L;

std::chrono::milliseconds duration_flag(const sdk::Request &req, std::string_view name,
                                        std::string_view fallback, bool zero_ok) {
  const std::string text = req.flag_or(name, fallback);
  const auto ns = plugins::go_duration_ns(text, kMaxWaitNs);
  if (!ns || *ns < 0 || (!zero_ok && *ns == 0)) {
    throw sdk::InvalidArgument(std::string(name) + ": '" + text + "' is not a duration from " +
                               (zero_ok ? "0" : "1ms") + " to 1h, e.g. 5s or 500ms");
  }
  return std::chrono::milliseconds(std::max<std::int64_t>(*ns / 1'000'000, zero_ok ? 0 : 1));
}

std::vector<std::string> list_flag(const sdk::Request &req, std::string_view name) {
  std::vector<std::string> out;
  const std::string text = req.flag_or(name, "");
  std::size_t start = 0;
  while (start <= text.size() && !text.empty()) {
    const auto comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos
                                                                     : comma - start);
    if (!item.empty()) out.push_back(std::move(item));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// Follows topic "http.rules" into `engine`. A document the engine refuses
// leaves the previous set in place; the refusal is logged.
sdk::TopicSubscription follow_rules(const sdk::Host &host, const std::string &uid,
                                    const std::shared_ptr<FaultEngine> &engine) {
  try {
    return host.subscribe(kRulesTopic, [host, uid, engine](std::string_view rule_set) {
      try {
        engine->update(rule_set);
      } catch (const std::exception &e) {
        host.warn("http " + uid + ": rule set refused, the previous one stays: " + e.what());
      }
    });
  } catch (const sdk::NotSupported &e) {
    throw sdk::NotSupported(std::string("http proxy follows the daemon's HTTP fault policies, "
                                        "which this host cannot pass on (") +
                            e.what() + "); http delay and http abort need no policies");
  }
}

class ProxyFault : public sdk::Fault {
 public:
  ProxyFault(sdk::Host host, ProxyFleet &fleet) : host_(std::move(host)), fleet_(fleet) {}

  sdk::Outcome create(const sdk::Request &req, sdk::Call &) override {
    const Endpoint listen = parse_listen("listen", req.flag_or("listen", ""));
    const Endpoint upstream = parse_upstream("upstream", req.flag_or("upstream", ""));
    if (same_socket(listen, upstream)) {
      throw sdk::InvalidArgument("upstream: " + upstream.text() +
                                 " is the proxy's own listen address; it would forward to itself");
    }
    duration_flag(req, "drain-timeout", "5s", true);  // checked now, used by destroy
    const auto upstream_timeout = duration_flag(req, "upstream-timeout", "30s", false);
    const std::string uid(req.uid());
    const bool follows_policies = req.action() == "proxy";
    const std::vector<std::string> policies =
        follows_policies ? list_flag(req, "policy") : std::vector<std::string>{};

    auto proxy = std::make_unique<RunningProxy>();
    proxy->engine = std::make_shared<FaultEngine>(policies);
    if (follows_policies) {
      proxy->rules = follow_rules(host_, uid, proxy->engine);
    } else {
      std::vector<std::pair<std::string, std::string>> flags;
      for (std::size_t i = 0; i < req.flag_count(); ++i)
        flags.emplace_back(req.flag_name(i), req.flag_value(i));
      // Names the flag at fault ("path-regex: ..."), as the daemon's 400 shows.
      proxy->engine->update(rule_set_from_flags(req.action(), flags));
    }

    auto config = std::make_shared<ProxyConfig>();
    config->engine = proxy->engine;
    config->upstream = upstream;
    config->upstream_timeout = upstream_timeout;
    if (upstream.ip_literal) {
      config->upstream_address.emplace(boost::asio::ip::make_address(upstream.host),
                                       upstream.port);
    }
    boost::asio::io_context &io = fleet_.io();
    proxy->server = ProxyServer::start(io, listen, config);
    proxy->reporter = std::make_unique<CounterReporter>(
        io, proxy->engine, [host = host_, uid](const std::string &counters) {
          host.report_counters(uid, counters);
        });

    const Endpoint bound = proxy->server->bound();
    json result = {{"listen", bound.text()},
                   {"upstream", upstream.text()},
                   {"policies", follows_policies && !policies.empty() ? json(policies) : json("all")},
                   {"rule_set_version", proxy->engine->version()}};
    if (!follows_policies) result["policies"] = json::array();
    const json restore = {{"listen", bound.text()}, {"upstream", upstream.text()}};
    if (!fleet_.add(uid, std::move(proxy)))
      throw sdk::AlreadyExists("experiment " + uid + " already runs a proxy");
    return {result.dump(), restore.dump()};
  }

  void destroy(const sdk::Request &req, sdk::Call &call) override {
    std::unique_ptr<RunningProxy> proxy = fleet_.take(std::string(req.uid()));
    if (!proxy) {
      // Its proxy died with the process that ran it (a daemon restart):
      // nothing listens, nothing to undo.
      call.report(R"({"already_gone": true})");
      return;
    }
    const auto drain = duration_flag(req, "drain-timeout", "5s", true);
    const std::size_t cut = proxy->stop(drain);
    const json report = {{"stopped", true},
                         {"counters", proxy->engine->counters_json()},
                         {"closed_at_deadline", cut}};
    call.report(report.dump());
  }

 private:
  sdk::Host host_;
  ProxyFleet &fleet_;
};

}  // namespace

void add_proxy_faults(sdk::FaultRouter &router, sdk::Host host, ProxyFleet &fleet) {
  for (const char *action : {"proxy", "delay", "abort"})
    router.add("http", action, std::make_unique<ProxyFault>(host, fleet));
}

}  // namespace blade::http
