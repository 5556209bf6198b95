// The cri restore record: written, read back field for field; a broken one
// refused naming the field.
#include <doctest/doctest.h>

#include <stdexcept>

#include <nlohmann/json.hpp>

#include "outer_record.hpp"

using blade::cri::OuterRecord;

TEST_CASE("the outer record round-trips, inner record and helper included") {
  OuterRecord r;
  r.container.runtime = "containerd";
  r.container.id = "0123abcd";
  r.container.name = "web";
  r.container.ns = "k8s.io";
  r.container.init_pid = 77;
  r.container.init_start = 123456789012ULL;
  r.container.labels = {{"a", "b"}};
  r.enter.pid = 77;
  r.enter.start = 123456789012ULL;
  r.enter.net = true;
  r.enter.mnt = true;
  r.helper = blade::cri::HelperRef{99, 555};
  r.inner = R"({"files":["/etc/x"],"n":1})";

  const std::string text = to_json(r);
  const auto j = nlohmann::json::parse(text);
  CHECK(j["container"]["id"] == "0123abcd");
  CHECK(j["container"]["init_start"] == 123456789012ULL);
  CHECK(j["helper"]["pid"] == 99);
  CHECK(j["inner"]["files"][0] == "/etc/x");
  CHECK_FALSE(j["container"].contains("labels"));

  const OuterRecord back = blade::cri::outer_record_from_json(text);
  CHECK(back.container.runtime == "containerd");
  CHECK(back.container.name == "web");
  CHECK(back.container.ns == "k8s.io");
  CHECK(back.container.init_pid == 77);
  CHECK(back.container.init_start == 123456789012ULL);
  CHECK(back.enter.pid == 77);
  CHECK(back.enter.start == 123456789012ULL);
  CHECK((back.enter.net && back.enter.mnt && !back.enter.pid_ns && !back.enter.cgroup));
  REQUIRE(back.helper);
  CHECK(back.helper->pid == 99);
  CHECK(back.helper->start == 555);
  REQUIRE(back.inner);
  CHECK(nlohmann::json::parse(*back.inner) == nlohmann::json::parse(*r.inner));
}

TEST_CASE("the record written ahead of the helper has helper and inner null") {
  OuterRecord r;
  r.container.runtime = "runc";
  r.container.id = "c";
  r.container.init_pid = 5;
  const auto j = nlohmann::json::parse(to_json(r));
  CHECK(j["helper"].is_null());
  CHECK(j["inner"].is_null());
  const OuterRecord back = blade::cri::outer_record_from_json(j.dump());
  CHECK_FALSE(back.helper);
  CHECK_FALSE(back.inner);
}

TEST_CASE("a broken record is refused naming the field") {
  auto message = [](const std::string &text) {
    try {
      blade::cri::outer_record_from_json(text);
    } catch (const std::invalid_argument &e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK(message("not json").find("not JSON") != std::string::npos);
  CHECK(message("[]").find("not a JSON object") != std::string::npos);
  CHECK(message(R"({"enter":{}})").find("container.runtime") != std::string::npos);
  const std::string no_enter =
      R"({"container":{"runtime":"runc","id":"c","name":"","ns":"","init_pid":5,"init_start":1}})";
  CHECK(message(no_enter).find("enter.mnt") != std::string::npos);
  const std::string bad_pid =
      R"({"container":{"runtime":"runc","id":"c","name":"","ns":"","init_pid":"x","init_start":1}})";
  CHECK(message(bad_pid).find("container.init_pid") != std::string::npos);
}
