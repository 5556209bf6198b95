// mem load against a real bladed: the holder's resident memory and the
// host's MemAvailable measured, and the holder gone after destroy.
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "../support/eventually.hpp"
#include "bladed_process.hpp"
#include "experiment_calls.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;
using namespace blade::test;

namespace {

std::int64_t meminfo_mb(const std::string &key) {
  std::ifstream in("/proc/meminfo");
  std::string k;
  std::int64_t kb = 0;
  std::string rest;
  while (in >> k >> kb) {
    std::getline(in, rest);
    if (k == key + ":") return kb / 1024;
  }
  FAIL("no " << key << " in /proc/meminfo");
  return 0;
}

std::int64_t rss_mb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) / 1024;
  }
  return -1;
}

bool alive(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  return paren != std::string::npos && text.substr(paren + 2, 1) != "Z";
}

BladedOptions os_plugin_only() {
  return only_plugin(fs::path(BLADE_BUILT_PLUGIN_DIR) / "os.so");
}

}  // namespace

TEST_CASE("mem load takes 256 MB more, holds them, and destroy frees them") {
  BladedProcess d(os_plugin_only());
  auto c = d.client();
  // The host's anonymous memory (AnonPages) is what the holder adds to.
  // MemAvailable is printed but not judged: on this VM it drifts by itself
  // for a while after memory is freed (an earlier holder's), by more than
  // the holder's size at times.
  const std::int64_t anon = meminfo_mb("AnonPages");
  const std::int64_t available = meminfo_mb("MemAvailable");
  // reserve = what stays available: 256 MB more get used.
  json body = {{"target", "mem"},
               {"action", "load"},
               {"flags", {{"reserve", std::to_string(available - 256)}, {"rate", "1024"}}}};
  auto created = post_json(c, "/v1/experiments", body);
  REQUIRE(created);
  REQUIRE_MESSAGE(created->status == 201, created->body);
  auto x = json::parse(created->body)["data"];
  const int pid = x["result"]["pid"];
  const std::string uid = x["uid"];
  CHECK(eventually([&] { return rss_mb(pid) >= 240; }, 10s));
  const std::int64_t grown = meminfo_mb("AnonPages") - anon;
  MESSAGE("holder rss " << rss_mb(pid) << " MB; AnonPages +" << grown << " MB; MemAvailable -"
                        << available - meminfo_mb("MemAvailable") << " MB");
  CHECK(rss_mb(pid) <= 256 + 16);
  CHECK(grown >= 256 - 48);
  CHECK(grown <= 256 + 48);
  std::ifstream adj("/proc/" + std::to_string(pid) + "/oom_score_adj");
  int score = 0;
  adj >> score;
  CHECK(score == 1000);

  const std::int64_t held = meminfo_mb("AnonPages");
  auto destroyed = c.Delete(("/v1/experiments/" + uid).c_str(), auth());
  REQUIRE(destroyed);
  CHECK(destroyed->status == 200);
  CHECK_FALSE(alive(pid));
  CHECK(eventually([&] { return held - meminfo_mb("AnonPages") >= 256 - 48; }, 5s));
  auto again = c.Delete(("/v1/experiments/" + uid).c_str(), auth());
  REQUIRE(again);
  CHECK(again->status == 200);
}

TEST_CASE("mem load: a target already reached is a 400 naming the flag") {
  BladedProcess d(os_plugin_only());
  auto c = d.client();
  auto reached =
      post_json(c, "/v1/experiments",
                {{"target", "mem"}, {"action", "load"}, {"flags", {{"mem-percent", "0"}}}});
  REQUIRE(reached);
  CHECK(reached->status == 400);
  CHECK(json::parse(reached->body)["details"][0]["field"] == "flags.mem-percent");
}

TEST_CASE("mem load mode=cache holds tmpfs page cache until destroyed") {
  BladedProcess d(os_plugin_only());
  auto c = d.client();
  const std::int64_t shmem = meminfo_mb("Shmem");
  const std::int64_t available = meminfo_mb("MemAvailable");
  auto created = post_json(
      c, "/v1/experiments",
      {{"target", "mem"},
       {"action", "load"},
       {"flags",
        {{"reserve", std::to_string(available - 128)}, {"rate", "1024"}, {"mode", "cache"}}}});
  REQUIRE(created);
  REQUIRE_MESSAGE(created->status == 201, created->body);
  auto x = json::parse(created->body)["data"];
  const fs::path file = x["result"]["file"].get<std::string>();
  CHECK(eventually([&] { return meminfo_mb("Shmem") - shmem >= 128 - 16; }, 10s));
  MESSAGE("Shmem +" << meminfo_mb("Shmem") - shmem << " MB in " << file);
  CHECK(fs::exists(file));
  auto destroyed = c.Delete(("/v1/experiments/" + x["uid"].get<std::string>()).c_str(), auth());
  REQUIRE(destroyed);
  CHECK(destroyed->status == 200);
  CHECK_FALSE(fs::exists(file));
  CHECK(eventually([&] { return meminfo_mb("Shmem") - shmem < 16; }, 5s));
}

TEST_CASE("mem load's holder dies with a SIGKILLed daemon") {
  BladedProcess d(os_plugin_only());
  auto c = d.client();
  json body = {{"target", "mem"},
               {"action", "load"},
               {"flags", {{"reserve", std::to_string(meminfo_mb("MemAvailable") - 64)}}}};
  auto created = post_json(c, "/v1/experiments", body);
  REQUIRE(created);
  REQUIRE(created->status == 201);
  const int pid = json::parse(created->body)["data"]["result"]["pid"];
  CHECK(alive(pid));
  d.process->signal(SIGKILL);
  REQUIRE(d.process->exit_code(10s));
  CHECK(eventually([&] { return !alive(pid); }, 5s));
}

TEST_CASE("a holder killed from outside (as by the OOM killer) fails its experiment, with why") {
  BladedProcess d(os_plugin_only());
  auto c = d.client();
  const std::int64_t available = meminfo_mb("MemAvailable");
  auto created = post_json(c, "/v1/experiments",
                           {{"target", "mem"},
                            {"action", "load"},
                            {"flags", {{"reserve", std::to_string(available - 32)}}}});
  REQUIRE(created);
  REQUIRE_MESSAGE(created->status == 201, created->body);
  auto x = json::parse(created->body)["data"];
  const int pid = x["result"]["pid"];
  const std::string uid = x["uid"];
  REQUIRE(::kill(pid, SIGKILL) == 0);  // what the OOM killer does

  json e;
  CHECK(eventually(
      [&] {
        e = json::parse(c.Get(("/v1/experiments/" + uid).c_str(), auth())->body)["data"];
        return e["status"] == "failed";
      },
      5s));
  CHECK(e["error"].get<std::string>().find("killed by SIGKILL") != std::string::npos);
  CHECK_FALSE(e["finished_at"].is_null());
  // Destroy of what already ended is a success that changes nothing.
  auto destroyed = c.Delete(("/v1/experiments/" + uid).c_str(), auth());
  REQUIRE(destroyed);
  CHECK(destroyed->status == 200);
  CHECK(json::parse(destroyed->body)["data"]["status"] == "failed");
  // The audit log says who ended it.
  auto audit = json::parse(c.Get("/v1/audit?limit=100", auth())->body)["data"]["items"];
  bool found = false;
  for (const auto &a : audit)
    if (a["action"] == "experiment.fault_ended" && a["subject"] == uid) found = true;
  CHECK(found);
}
