// Creating and destroying experiments over HTTP, for the tests of the real
// plugins: a bladed with one built plugin, and the API's answer unpacked.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../support/eventually.hpp"
#include "bladed_process.hpp"

namespace blade::test {

// A bladed loading only `plugin` (a built .so), with `args` appended.
inline BladedOptions only_plugin(const std::filesystem::path &plugin,
                                 std::vector<std::string> args = {}) {
  BladedOptions o;
  o.plugins = {};
  o.plugin_files = {plugin};
  o.args = std::move(args);
  return o;
}

struct Answer {
  int status = 0;
  nlohmann::json body;
  std::string uid() const { return body["data"].value("uid", ""); }
  std::string field() const {
    return body.contains("details") && !body["details"].empty()
               ? body["details"][0].value("field", "")
               : "";
  }
  std::string message() const { return body.value("message", ""); }
};

// POST /v1/experiments of `body` as it is.
inline Answer create(httplib::Client &c, const nlohmann::json &body) {
  auto r = post_json(c, "/v1/experiments", body);
  REQUIRE(r);
  return Answer{r->status, nlohmann::json::parse(r->body, nullptr, false)};
}

inline Answer create(httplib::Client &c, const std::string &target, const std::string &action,
                     const nlohmann::json &flags, bool dry_run = false) {
  nlohmann::json body = {{"target", target}, {"action", action}, {"flags", flags}};
  if (dry_run) body["dry_run"] = true;
  return create(c, body);
}

inline Answer destroy(httplib::Client &c, const std::string &uid) {
  auto r = c.Delete(("/v1/experiments/" + uid).c_str(), auth());
  REQUIRE(r);
  return Answer{r->status, nlohmann::json::parse(r->body, nullptr, false)};
}

// Destroys the experiment and checks it is gone: a 200 whose record says
// `destroyed` (as a second destroy of it answers too).
inline void check_destroyed(httplib::Client &c, const std::string &uid) {
  const Answer a = destroy(c, uid);
  INFO(a.body.dump());
  CHECK(a.status == 200);
  CHECK(a.body["data"]["status"] == "destroyed");
}

// The experiment's record (the data of GET /v1/experiments/<uid>); null
// when the daemon does not answer 200.
inline nlohmann::json experiment(httplib::Client &c, const std::string &uid) {
  auto got = c.Get(("/v1/experiments/" + uid).c_str(), auth());
  if (!got || got->status != 200) return nullptr;
  auto body = nlohmann::json::parse(got->body, nullptr, false);
  return body.is_object() && body.contains("data") ? body["data"] : nlohmann::json();
}

// Polls the experiment until its status is `want` or `timeout` passes; its
// last record (null if the daemon never answered).
inline nlohmann::json wait_status(httplib::Client &c, const std::string &uid,
                                  const std::string &want,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  nlohmann::json x;
  eventually(
      [&] {
        x = experiment(c, uid);
        return x.is_object() && x.value("status", "") == want;
      },
      timeout);
  return x;
}

// Polls the experiment until it is `destroyed` (as the recovery at a
// restart leaves it) or `timeout` passes; its last status.
inline std::string wait_destroyed(httplib::Client &c, const std::string &uid,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto x = wait_status(c, uid, "destroyed", timeout);
  return x.is_object() ? x.value("status", "") : "";
}

}  // namespace blade::test
