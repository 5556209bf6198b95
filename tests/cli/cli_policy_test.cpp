// The real blade against a real bladed: blade policy apply | list | get |
// delete, with policy files in YAML and JSON.
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "../server/bladed_process.hpp"
#include "blade_run.hpp"
#include "cli_fixtures.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace blade::test;

namespace {

constexpr const char *kTwoPolicies = R"(apiVersion: v1
kind: FaultInjectionPolicy
metadata:
  name: checkout
spec:
  rules:
    - match: {path: {prefix: /api/}, method: POST}
      fault: {percentage: 25, abort: {httpStatus: 503, body: "injected"}}
      priority: 5
---
metadata: {name: search}
spec:
  rules:
    - match: {path: {regex: "/search/[0-9]+"}}
      fault: {delay: {fixedDelay: 200ms}}
  duration_seconds: 600
)";

json stored(BladedProcess &d, const std::string &name) {
  auto c = d.client();
  auto res = c.Get(("/v1/policies/" + name).c_str(), auth());
  REQUIRE(res);
  if (res->status != 200) return nullptr;
  return json::parse(res->body)["data"];
}

void write(const fs::path &file, const std::string &text) {
  std::ofstream(file) << text;
}

}  // namespace

TEST_CASE("policy apply creates, then updates only what changed; list, get and delete") {
  BladedProcess d(with_test_plugins({}));
  auto blade = runner_for(d);
  const fs::path file = d.dir / "policies.yaml";
  write(file, kTwoPolicies);

  auto applied = blade.run({"policy", "apply", "-f", file.string()});
  INFO(applied.err);
  REQUIRE(applied.code == 0);
  CHECK(applied.out == "policy/checkout created (version 1)\npolicy/search created (version 1)\n");
  const json checkout = stored(d, "checkout");
  CHECK(checkout["spec"]["rules"][0]["fault"]["abort"]["body"] == "injected");
  CHECK(checkout["spec"]["rules"][0]["match"]["method"] == "POST");
  CHECK(stored(d, "search")["spec"]["duration_seconds"] == 600);

  // The same file again changes nothing.
  auto again = blade.run({"policy", "apply", "-f", file.string()});
  REQUIRE(again.code == 0);
  CHECK(again.out == "policy/checkout unchanged (version 1)\npolicy/search unchanged (version 1)\n");

  // One policy edited, as JSON this time.
  json edited = checkout;
  edited.erase("status");
  edited["metadata"].erase("version");
  edited["spec"]["rules"][0]["fault"]["percentage"] = 50;
  write(d.dir / "checkout.json", edited.dump());
  auto changed = blade.run({"policy", "apply", "-f", (d.dir / "checkout.json").string()});
  INFO(changed.err);
  REQUIRE(changed.code == 0);
  CHECK(changed.out == "policy/checkout configured (version 2)\n");
  CHECK(stored(d, "checkout")["spec"]["rules"][0]["fault"]["percentage"] == 50);

  auto list = blade.run({"policy", "list"});
  REQUIRE(list.code == 0);
  const auto rows = lines_of(list.out);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].rfind("checkout\t2\t1\t", 0) == 0);
  CHECK(rows[0].find("\tnever\t") != std::string::npos);
  CHECK(rows[1].rfind("search\t1\t1\t", 0) == 0);
  CHECK(rows[1].find("\tnever\t") == std::string::npos);

  auto as_json = blade.run({"-o", "json", "policy", "get", "search"});
  REQUIRE(as_json.code == 0);
  CHECK(json::parse(as_json.out) == stored(d, "search"));

  auto deleted = blade.run({"policy", "delete", "search"});
  REQUIRE(deleted.code == 0);
  CHECK(deleted.out == "policy/search deleted\n");
  CHECK(stored(d, "search").is_null());

  auto gone = blade.run({"policy", "get", "search"});
  CHECK(gone.code == 1);
  CHECK(gone.err.find("not found") != std::string::npos);
}

TEST_CASE("policy apply reports the field the daemon refused, and usage errors exit 2") {
  BladedProcess d(with_test_plugins({}));
  auto blade = runner_for(d);
  const fs::path file = d.dir / "bad.yaml";
  write(file, R"(metadata: {name: bad}
spec:
  rules:
    - fault: {abort: {httpStatus: 503}}
    - fault: {abort: {httpStatus: 503}}
    - match: {path: {regex: "/a/(unclosed"}}
      fault: {abort: {httpStatus: 503}}
)");
  auto refused = blade.run({"policy", "apply", "-f", file.string()});
  CHECK(refused.code == 1);
  CHECK(refused.err.find("spec.rules[2].match.path.regex") != std::string::npos);
  CHECK(stored(d, "bad").is_null());

  CHECK(blade.run({"policy", "apply"}).code == 2);
  CHECK(blade.run({"policy", "get"}).code == 2);
  CHECK(blade.run({"policy", "frobnicate"}).code == 2);
  auto missing = blade.run({"policy", "apply", "-f", (d.dir / "absent.yaml").string()});
  CHECK(missing.code == 1);
  CHECK(missing.err.find("cannot read") != std::string::npos);
  auto help = blade.run({"policy", "--help"});
  CHECK(help.code == 0);
  CHECK(help.out.find("apply -f FILE") != std::string::npos);
}
