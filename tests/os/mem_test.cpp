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
#include "../support/meminfo.hpp"
#include "../support/process_state.hpp"
#include "os_test_support.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;
using namespace blade::test;
using blade::test::os::os_options;

namespace {

std::int64_t rss_mb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) / 1024;
  }
  return -1;
}

// Running or sleeping: neither gone nor a zombie.
bool alive(pid_t pid) {
  const char state = process_state(pid);
  return state != 0 && state != 'Z';
}

}  // namespace

TEST_CASE("mem load takes 256 MB more, holds them, and destroy frees them") {
  BladedProcess d(os_options());
  auto c = d.client();
  // The host's anonymous memory (AnonPages) is what the holder adds to.
  // MemAvailable is printed but not judged: on this VM it drifts by itself
  // for a while after memory is freed (an earlier holder's), by more than
  // the holder's size at times.
  const std::int64_t anon = meminfo_mb("AnonPages");
  const std::int64_t available = meminfo_mb("MemAvailable");
  // reserve = what stays available: 256 MB more get used.
  auto created =
      create(c, "mem", "load", {{"reserve", std::to_string(available - 256)}, {"rate", "1024"}});
  REQUIRE_MESSAGE(created.status == 201, created.body.dump());
  const int pid = created.body["data"]["result"]["pid"];
  const std::string uid = created.uid();
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
  CHECK(destroy(c, uid).status == 200);
  CHECK_FALSE(alive(pid));
  CHECK(eventually([&] { return held - meminfo_mb("AnonPages") >= 256 - 48; }, 5s));
  CHECK(destroy(c, uid).status == 200);
}

TEST_CASE("mem load: a target already reached is a 400 naming the flag") {
  BladedProcess d(os_options());
  auto c = d.client();
  auto reached = create(c, "mem", "load", {{"mem-percent", "0"}});
  CHECK(reached.status == 400);
  CHECK(reached.field() == "flags.mem-percent");
}

TEST_CASE("mem load mode=cache holds tmpfs page cache until destroyed") {
  BladedProcess d(os_options());
  auto c = d.client();
  const std::int64_t shmem = meminfo_mb("Shmem");
  const std::int64_t available = meminfo_mb("MemAvailable");
  auto created =
      create(c, "mem", "load",
             {{"reserve", std::to_string(available - 128)}, {"rate", "1024"}, {"mode", "cache"}});
  REQUIRE_MESSAGE(created.status == 201, created.body.dump());
  const fs::path file = created.body["data"]["result"]["file"].get<std::string>();
  CHECK(eventually([&] { return meminfo_mb("Shmem") - shmem >= 128 - 16; }, 10s));
  MESSAGE("Shmem +" << meminfo_mb("Shmem") - shmem << " MB in " << file);
  CHECK(fs::exists(file));
  CHECK(destroy(c, created.uid()).status == 200);
  CHECK_FALSE(fs::exists(file));
  CHECK(eventually([&] { return meminfo_mb("Shmem") - shmem < 16; }, 5s));
}

TEST_CASE("mem load's holder dies with a SIGKILLed daemon") {
  BladedProcess d(os_options());
  auto c = d.client();
  auto created =
      create(c, "mem", "load", {{"reserve", std::to_string(meminfo_mb("MemAvailable") - 64)}});
  REQUIRE_MESSAGE(created.status == 201, created.body.dump());
  const int pid = created.body["data"]["result"]["pid"];
  CHECK(alive(pid));
  d.crash();
  CHECK(eventually([&] { return !alive(pid); }, 5s));
}

TEST_CASE("a holder killed from outside (as by the OOM killer) fails its experiment, with why") {
  BladedProcess d(os_options());
  auto c = d.client();
  const std::int64_t available = meminfo_mb("MemAvailable");
  auto created = create(c, "mem", "load", {{"reserve", std::to_string(available - 32)}});
  REQUIRE_MESSAGE(created.status == 201, created.body.dump());
  const int pid = created.body["data"]["result"]["pid"];
  const std::string uid = created.uid();
  REQUIRE(::kill(pid, SIGKILL) == 0);  // what the OOM killer does

  const json e = wait_status(c, uid, "failed", 5s);
  REQUIRE(e.is_object());
  CHECK(e["status"] == "failed");
  CHECK(e["error"].get<std::string>().find("killed by SIGKILL") != std::string::npos);
  CHECK_FALSE(e["finished_at"].is_null());
  // Destroy of what already ended is a success that changes nothing.
  auto destroyed = destroy(c, uid);
  CHECK(destroyed.status == 200);
  CHECK(destroyed.body["data"]["status"] == "failed");
  // The audit log says who ended it.
  auto audit = json::parse(c.Get("/v1/audit?limit=100", auth())->body)["data"]["items"];
  bool found = false;
  for (const auto &a : audit)
    if (a["action"] == "experiment.fault_ended" && a["subject"] == uid) found = true;
  CHECK(found);
}
