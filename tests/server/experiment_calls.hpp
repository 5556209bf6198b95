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

inline Answer create(httplib::Client &c, const std::string &target, const std::string &action,
                     const nlohmann::json &flags, bool dry_run = false) {
  nlohmann::json body = {{"target", target}, {"action", action}, {"flags", flags}};
  if (dry_run) body["dry_run"] = true;
  auto r = post_json(c, "/v1/experiments", body);
  REQUIRE(r);
  return Answer{r->status, nlohmann::json::parse(r->body, nullptr, false)};
}

inline int destroy(httplib::Client &c, const std::string &uid) {
  auto r = c.Delete(("/v1/experiments/" + uid).c_str(), auth());
  REQUIRE(r);
  return r->status;
}

// Polls the experiment until it is `destroyed` (as the recovery at a
// restart leaves it) or `timeout` passes; its last status.
inline std::string wait_destroyed(httplib::Client &c, const std::string &uid,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  std::string status;
  eventually(
      [&] {
        auto got = c.Get(("/v1/experiments/" + uid).c_str(), auth());
        if (!got || got->status != 200) return false;
        status = nlohmann::json::parse(got->body)["data"].value("status", "");
        return status == "destroyed";
      },
      timeout);
  return status;
}

}  // namespace blade::test
