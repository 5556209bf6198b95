// Naming the container in a real runc root through a real bladed: by an id
// prefix and by kubelet labels (what an SRE has from kubectl), and the
// errors: no such container (422 naming where it looked), a fault the
// container cannot have (time travel), a bad fault flag (400 naming it) —
// each with nothing started and nothing changed.
#include <filesystem>
#include <string>

#include <doctest/doctest.h>

#include "../../support/process_state.hpp"
#include "cri_runc_support.hpp"

namespace fs = std::filesystem;
using namespace blade::test;
using namespace blade::test::cri;

namespace {

// POST in scope cri with exactly `flags` (no container flags added).
Answer create_cri(httplib::Client &c, const std::string &target, const std::string &action,
                  const json &flags) {
  return create(c, json{{"scope", "cri"}, {"target", target}, {"action", action}, {"flags", flags}});
}

}  // namespace

TEST_CASE("a runc container named by id prefix or kubelet labels; errors change nothing") {
  RuncOptions o;
  const std::string pod = "web-" + std::to_string(::getpid());
  o.annotations["io.kubernetes.pod.name"] = pod;
  o.annotations["io.kubernetes.container.name"] = "nginx";
  RuncContainer ctr(o);
  const pid_t sleeper = ctr.exec_detached({"/bin/sleep", "4545"});
  BladedProcess d(cri_options());
  auto c = d.client();
  const json where = {{"container-runtime", "runc"},
                      {"container-state-root", ctr.root().string()}};

  SUBCASE("by kubelet labels") {
    json flags = where;
    flags["container-label-selector"] =
        "io.kubernetes.pod.name=" + pod + ",io.kubernetes.container.name=nginx";
    flags["process"] = "sleep 4545";
    const auto a = create_cri(c, "process", "stop", flags);
    REQUIRE_MESSAGE(a.status == 201, a.body.dump());
    CHECK(a.body["data"]["result"]["container"]["id"] == ctr.id());
    CHECK(eventually([&] { return process_state(sleeper) == 'T'; }));
    CHECK(destroy(c, a.uid()).status == 200);
    CHECK(eventually([&] { return process_state(sleeper) != 'T'; }));
  }
  SUBCASE("by container name and id prefix") {
    json flags = where;
    flags["container-name"] = "nginx";
    flags["container-id"] = ctr.id().substr(0, ctr.id().size() - 1);
    flags["process"] = "sleep 4545";
    const auto a = create_cri(c, "process", "stop", flags);
    REQUIRE_MESSAGE(a.status == 201, a.body.dump());
    CHECK(a.body["data"]["result"]["container"]["id"] == ctr.id());
    CHECK(destroy(c, a.uid()).status == 200);
  }
  // The plugin's NOT_FOUND is the executor status the daemon answers with
  // 422 (docs/http-api.md: an executor's NOT_FOUND, like "no such
  // process", is 422; 404 is for routes, uids and unserved actions).
  SUBCASE("no such container: 422 naming the runtime and the root it read") {
    json flags = where;
    flags["container-id"] = "no-such-container";
    flags["process"] = "sleep 4545";
    const auto a = create_cri(c, "process", "stop", flags);
    INFO(a.body.dump());
    CHECK(a.status == 422);
    const std::string error = a.body["data"].value("error", "");
    CHECK(error.find("no-such-container") != std::string::npos);
    CHECK(error.find("runc") != std::string::npos);
    CHECK(error.find(ctr.root().string()) != std::string::npos);
  }
  SUBCASE("a label that matches nothing: 422") {
    json flags = where;
    flags["container-label-selector"] = "io.kubernetes.pod.name=not-" + pod;
    flags["process"] = "sleep 4545";
    CHECK(create_cri(c, "process", "stop", flags).status == 422);
  }
  SUBCASE("time travel is not offered in a container") {
    const auto a = create_cri(c, "time", "travel", container_flags(ctr, {{"offset", "1h"}}));
    INFO(a.body.dump());
    CHECK(a.status == 404);
  }
  SUBCASE("a bad fault flag is the fault's 400, naming it") {
    const auto a = create_in(c, ctr, "file", "delete", {{"filepath", "relative/path"}});
    INFO(a.body.dump());
    CHECK(a.status == 400);
    CHECK(a.body.dump().find("filepath") != std::string::npos);
  }
  const char state = process_state(sleeper);
  CHECK((state == 'S' || state == 'R'));  // running again, or never stopped
  CHECK(no_helper_left(d));
}
