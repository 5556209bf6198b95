// HTTP fault policies over the API, for the tests of /v1/policies and the
// config stream: a bladed with a viewer token besides the admin one, policy
// bodies, and the calls with their answers unpacked.
#pragma once

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../support/temp_dir.hpp"
#include "bladed_process.hpp"
#include "experiment_calls.hpp"

namespace blade::test {

// A token with the viewer role in every PolicyDaemon.
inline const std::string kViewerToken = "viewer-secret-0123456789abcdef";

// A bladed without plugins whose config file adds the viewer token
// "dashboard"; `args` are appended to its command line.
struct PolicyDaemon {
  TempDir conf{"policy-tokens"};
  BladedProcess bladed;

  explicit PolicyDaemon(std::vector<std::string> args = {})
      : bladed(options(conf, std::move(args))) {}

 private:
  static BladedOptions options(const TempDir &dir, std::vector<std::string> args) {
    const auto file = dir / "tokens.yaml";
    std::ofstream(file) << "tokens:\n  - {name: dashboard, token: " << kViewerToken
                        << ", role: viewer}\n";
    BladedOptions o;
    o.plugins = {};
    o.args = {"--config", file.string()};
    o.args.insert(o.args.end(), args.begin(), args.end());
    return o;
  }
};

inline httplib::Headers viewer() {
  return {{"X-Api-Token", kViewerToken}};
}

// One rule: requests under `prefix` are answered `status`, at `priority`.
inline nlohmann::json abort_rule(const std::string &prefix, int status = 503, int priority = 0) {
  return {{"priority", priority},
          {"match", {{"path", {{"prefix", prefix}}}}},
          {"fault", {{"percentage", 100}, {"abort", {{"httpStatus", status}}}}}};
}

// A FaultInjectionPolicy named `name` holding `rules`.
inline nlohmann::json fault_policy(const std::string &name,
                                   nlohmann::json rules = nlohmann::json::array({abort_rule("/api/")})) {
  return {{"apiVersion", "v1"},
          {"kind", "FaultInjectionPolicy"},
          {"metadata", {{"name", name}}},
          {"spec", {{"rules", std::move(rules)}}}};
}

inline Answer answer_of(const httplib::Result &r) {
  REQUIRE_MESSAGE(r, "no answer: " << httplib::to_string(r.error()));
  return Answer{r->status, nlohmann::json::parse(r->body, nullptr, false)};
}

inline Answer create_policy(httplib::Client &c, const nlohmann::json &body,
                            const httplib::Headers &headers = auth()) {
  return answer_of(c.Post("/v1/policies", headers, body.dump(), "application/json"));
}

inline Answer put_policy(httplib::Client &c, const std::string &name, const nlohmann::json &body,
                         const httplib::Headers &headers = auth()) {
  return answer_of(
      c.Put(("/v1/policies/" + name).c_str(), headers, body.dump(), "application/json"));
}

inline Answer get_policy(httplib::Client &c, const std::string &name,
                         const httplib::Headers &headers = auth()) {
  return answer_of(c.Get(("/v1/policies/" + name).c_str(), headers));
}

inline Answer delete_policy(httplib::Client &c, const std::string &name,
                            const httplib::Headers &headers = auth()) {
  return answer_of(c.Delete(("/v1/policies/" + name).c_str(), headers));
}

inline Answer list_policies(httplib::Client &c, const httplib::Headers &headers = auth()) {
  return answer_of(c.Get("/v1/policies", headers));
}

}  // namespace blade::test
