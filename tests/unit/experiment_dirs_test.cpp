// plugins::ExperimentDirs on a real temp dir: the paths it is given are the
// ones used (an upgraded daemon must find the old records and claims), a
// claim refuses another live owner by name, is taken over once the owner's
// dir is gone (or the family's own rule says so), and finish leaves nothing.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <doctest/doctest.h>

#include "../../plugins/common/experiment_dirs.hpp"

namespace fs = std::filesystem;
using blade::plugins::Claim;
using blade::plugins::ExperimentDirs;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "blade-expdirs-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// What a create does before its first step, without a host: the dir made.
void make_dir(const ExperimentDirs &d, const std::string &uid) {
  blade::plugins::make_private_dir(d.dir(uid));
  std::ofstream(d.dir(uid) + "/record.json") << "{}";
}

std::size_t files_in(const fs::path &p) {
  if (!fs::exists(p)) return 0;
  return static_cast<std::size_t>(std::distance(fs::directory_iterator(p), {}));
}

}  // namespace

TEST_CASE("dir is <parent>/<uid> exactly; a uid that is not one component is refused") {
  TempDir t;
  ExperimentDirs d((t.path / "netem/experiments").string(), (t.path / "netem/claims").string());
  CHECK(d.dir("abc123") == (t.path / "netem/experiments/abc123").string());
  CHECK(d.claims().dir() == (t.path / "netem/claims").string());
  for (const char *bad : {"", ".", "..", "a/b", "../x"})
    CHECK_THROWS_AS(d.dir(bad), blade::sdk::FailedPrecondition);
  ExperimentDirs none("", "");
  CHECK_THROWS_WITH_AS(none.dir("u1"), doctest::Contains("no state dir"),
                       blade::sdk::FailedPrecondition);
}

TEST_CASE("take refuses another live owner by name, and is taken over once its dir is gone") {
  TempDir t;
  ExperimentDirs d((t.path / "dns").string(), (t.path / "dns-claims").string());
  make_dir(d, "first");
  d.take("domain", "domain:example.com", "first");
  d.take("domain", "domain:example.com", "first");  // its own: a no-op
  CHECK(files_in(t.path / "dns-claims") == 1);

  make_dir(d, "second");
  CHECK_THROWS_WITH_AS(d.take("domain", "domain:example.com", "second"),
                       "domain: example.com is already the target of active experiment first; "
                       "destroy it first",
                       blade::sdk::AlreadyExists);
  d.take("domain", "domain:other.org", "second");  // another resource: no conflict

  // A destroy that died between releasing and removing: here, the dir
  // removed by hand with the claim still there.
  fs::remove_all(d.dir("first"));
  d.take("domain", "domain:example.com", "second");
  CHECK(d.claims().owner_of("domain:example.com") == std::string("second"));
}

TEST_CASE("also_gone adds to the dir rule, never replaces it") {
  TempDir t;
  ExperimentDirs d((t.path / "backups").string(), (t.path / "claims").string());
  make_dir(d, "a");
  make_dir(d, "b");
  auto same = [](const std::string &other) { return other == "pid:42"; };
  auto never = [](const Claim &) { return false; };
  auto exited = [](const Claim &c) { return c.note.value("exited", false); };
  d.take("process", "pid:42", "a", {{"exited", false}}, same, never);
  CHECK(d.conflict("b", same, exited).has_value());
  CHECK_THROWS_AS(d.take("process", "pid:42", "b", {}, same, exited), blade::sdk::AlreadyExists);
  d.finish("a");
  make_dir(d, "c");
  d.take("process", "pid:42", "c", {{"exited", true}}, same, never);
  // The family's rule alone frees it, with c's dir still there.
  CHECK_FALSE(d.conflict("b", same, exited).has_value());
  CHECK(d.conflict("b", same).has_value());  // the dir rule alone: c is live
}

TEST_CASE("finish releases the claims, removes the dir, and is idempotent") {
  TempDir t;
  ExperimentDirs d((t.path / "backups").string(), (t.path / "claims").string());
  make_dir(d, "u1");
  fs::create_directories(d.dir("u1") + "/nested/deeper");
  d.take("offset", "clock:realtime", "u1");
  d.take("filepath", "path:/etc/x", "u1");
  CHECK(files_in(t.path / "claims") == 2);
  d.finish("u1");
  CHECK_FALSE(fs::exists(d.dir("u1")));
  CHECK(files_in(t.path / "claims") == 0);
  CHECK(fs::exists(t.path / "backups"));
  d.finish("u1");

  // A family with no claims (an empty claims dir) finishes alike.
  ExperimentDirs drop((t.path / "drop").string(), "");
  make_dir(drop, "u2");
  drop.finish("u2");
  CHECK_FALSE(fs::exists(drop.dir("u2")));
}

TEST_CASE("make_private_dir makes the parents it creates private too, and leaves existing ones") {
  TempDir t;
  ::chmod(t.path.c_str(), 0755);
  const fs::path leaf = t.path / "containers" / "abc" / "state";
  blade::plugins::make_private_dir(leaf.string());
  const auto mode = [](const fs::path &p) { return fs::status(p).permissions() & fs::perms::all; };
  CHECK(mode(leaf) == fs::perms::owner_all);
  CHECK(mode(t.path / "containers") == fs::perms::owner_all);
  CHECK(mode(t.path / "containers" / "abc") == fs::perms::owner_all);
  CHECK((mode(t.path) & fs::perms::others_read) != fs::perms::none);  // existed: untouched
  blade::plugins::make_private_dir(leaf.string());  // again: it exists, no error
  CHECK(mode(leaf) == fs::perms::owner_all);
}
