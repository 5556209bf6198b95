// disk fill and burn across crashes mid-create (failpoints armed through
// BLADE_FAILPOINTS): the restore record written ahead of each file, a
// destroy from a record naming a file never created, a destroy with no
// record at all (the files found by their uid-derived names); and the
// paths bladed lives on, refused.
#include <signal.h>

#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "disk_test_support.hpp"

using namespace blade::test;
using namespace blade::test::disk;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

json fill_flags(const fs::path &dir) {
  return {{"path", dir.string()}, {"size", "8"}};
}
json burn_flags(const fs::path &dir) {
  return {{"path", dir.string()}, {"read", true}, {"write", true}, {"size", "1"}};
}

// A daemon with the disk plugin and `failpoints` armed (BLADE_FAILPOINTS).
BladedOptions armed(const std::string &failpoints) {
  BladedOptions o = disk_options();
  o.env = {"BLADE_FAILPOINTS=" + failpoints};
  return o;
}

// The only experiment of a fresh daemon.
std::string only_uid(httplib::Client &c) {
  auto r = c.Get("/v1/experiments", auth());
  REQUIRE(r);
  const auto items = json::parse(r->body)["data"]["items"];
  REQUIRE(items.size() == 1);
  return items[0]["uid"];
}

// Creates with a daemon that a failpoint kills inside the create, starts it
// again on the same state without failpoints, and returns the experiment's
// uid, read after the restart.
std::string crash_in_create(BladedProcess &d, const std::string &action, const json &flags) {
  {
    auto c = d.client();
    post_json(c, "/v1/experiments", {{"target", "disk"}, {"action", action}, {"flags", flags}});
  }
  REQUIRE(d.process->exit_code(10s) == -SIGKILL);
  d.set_env({});
  d.restart();
  auto c = d.client();
  return only_uid(c);
}

}  // namespace

#ifdef BLADE_FAILPOINTS

TEST_CASE("a crash after the record is written ahead but before the file exists leaves nothing") {
  ScratchFs t("tmpfs", 64);
  const Usage empty = usage(t.path());
  struct Case {
    std::string action, point;
    json flags;
  };
  // Each record names a file never created: fill's file, burn's write file
  // (the read file exists and is full by then).
  for (const Case &k : {Case{"fill", "disk.fill.before_create", fill_flags(t.path())},
                        Case{"fill", "disk.fill.after_fallocate", fill_flags(t.path())},
                        Case{"burn", "disk.burn.before_create_write", burn_flags(t.path())}}) {
    CAPTURE(k.point);
    BladedProcess d(armed(k.point + "=kill"));
    const std::string uid = crash_in_create(d, k.action, k.flags);
    auto c = d.client();
    CHECK(wait_destroyed(c, uid) == "destroyed");
    CHECK(entries(t.path()).empty());
    CHECK(usage(t.path()).available == empty.available);
  }
}

TEST_CASE("with no record (a crash before the first), destroy finds the files by their names") {
  ScratchFs t("tmpfs", 64);
  for (const std::string action : {"fill", "burn"}) {
    CAPTURE(action);
    // The create stalls before the plugin is called, with its row stored
    // and no record: the moment a crash leaves files no record names when
    // the host stores records only at the end (an ABI 1.1 host).
    BladedProcess d(armed("core.create.before_plugin=sleep:5000"));
    std::thread creating([&] {
      auto c = d.client();
      post_json(c, "/v1/experiments",
                {{"target", "disk"},
                 {"action", action},
                 {"flags", action == "fill" ? fill_flags(t.path()) : burn_flags(t.path())}});
    });
    auto c = d.client();
    std::string uid;
    REQUIRE(eventually([&] {
      auto r = c.Get("/v1/experiments", auth());
      if (!r || r->status != 200) return false;
      const auto items = json::parse(r->body)["data"]["items"];
      if (items.size() != 1) return false;
      uid = items[0]["uid"];
      return true;
    }));
    const std::vector<std::string> planted =
        action == "fill" ? std::vector<std::string>{"blade-fill-" + uid + ".dat"}
                         : std::vector<std::string>{"blade-burn-" + uid + ".read",
                                                    "blade-burn-" + uid + ".write"};
    for (const auto &name : planted)
      std::ofstream(t / name) << "left by a crash";
    // Not ours: another experiment's file stays.
    std::ofstream(t / "blade-fill-0000000000000000.dat") << "another experiment";
    d.crash();
    creating.join();
    d.set_env({});
    d.restart();
    auto c2 = d.client();
    CHECK(wait_destroyed(c2, uid) == "destroyed");
    CHECK(entries(t.path()) == std::vector<std::string>{"blade-fill-0000000000000000.dat"});
    fs::remove(t / "blade-fill-0000000000000000.dat");
  }
}

TEST_CASE("a create that fails after writing ahead is undone by its destroy: failed, nothing left") {
  ScratchFs t("tmpfs", 64);
  const Usage empty = usage(t.path());
  BladedProcess d(armed("disk.fill.after_fallocate=error;disk.burn.after_fill_read=error"));
  auto c = d.client();
  for (const std::string action : {"fill", "burn"}) {
    CAPTURE(action);
    auto a = create(c, "disk", action, action == "fill" ? fill_flags(t.path()) : burn_flags(t.path()));
    CHECK(a.status == 500);
    const auto x = wait_status(c, a.uid(), "failed");
    CHECK(x.value("status", "") == "failed");
    CHECK(entries(t.path()).empty());
    CHECK(usage(t.path()).available == empty.available);
  }
}

#endif  // BLADE_FAILPOINTS

TEST_CASE("fill and burn refuse bladed's own dirs, /proc and /sys, dry runs alike") {
  BladedProcess d(disk_options());
  auto c = d.client();
  TempDir t("disk-protected");
  fs::create_symlink(d.dir / "state", t / "to-state");
  std::vector<fs::path> refused = {d.dir / "state", t / "to-state", d.dir / "plugins", "/proc",
                                   "/sys"};
  if (fs::exists(d.dir / "state" / "plugins" / "disk"))
    refused.push_back(d.dir / "state" / "plugins" / "disk");
  for (const auto &path : refused) {
    for (const bool dry : {false, true}) {
      CAPTURE(path);
      CAPTURE(dry);
      for (const auto &[action, flags] :
           {std::pair<std::string, json>{"fill", {{"path", path.string()}, {"size", "1"}}},
            std::pair<std::string, json>{"burn",
                                         {{"path", path.string()}, {"write", true}, {"size", "1"}}}}) {
        auto a = create(c, "disk", action, flags, dry);
        CHECK(a.status == 400);
        CHECK(a.field() == "flags.path");
        CHECK_MESSAGE(a.message().find("refused") != std::string::npos, a.message());
      }
    }
  }
  // Nothing of the plugin's was created where the daemon lives.
  for (const auto &e : fs::recursive_directory_iterator(d.dir.path()))
    CHECK_MESSAGE(e.path().filename().string().rfind("blade-", 0) != 0, e.path());
}
