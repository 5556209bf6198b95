// file add | append | chmod | delete | move against a real bladed: the effect
// on the filesystem, and after destroy the bytes, mode, owner and times of
// what was there before, exactly.
#include <sys/stat.h>
#include <sys/time.h>

#include <chrono>
#include <filesystem>

#include <doctest/doctest.h>

#include "../support/temp_dir.hpp"
#include "os_test_support.hpp"

namespace fs = std::filesystem;
using namespace blade::test;
using namespace blade::test::os;

namespace {

void set_mtime(const fs::path &p, long seconds) {
  const struct timeval tv[2] = {{seconds, 0}, {seconds, 0}};
  REQUIRE(::lutimes(p.c_str(), tv) == 0);
}

}  // namespace

TEST_CASE("file add creates a file (and its dirs) and destroy removes exactly those") {
  BladedProcess d(os_options());
  auto c = d.client();
  TempDir t("os-file-add");
  const fs::path file = t / "a/b/new.txt";

  auto a = create(c, "file", "add",
                  {{"filepath", file.string()},
                   {"content", "aGVsbG8K"},
                   {"enable-base64", true},
                   {"auto-create-dir", true}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  CHECK(read_text(file) == "hello\n");
  CHECK(destroy(c, a.uid()).status == 200);
  CHECK_FALSE(fs::exists(file));
  CHECK_FALSE(fs::exists(t / "a"));          // the dirs it made went too
  CHECK(destroy(c, a.uid()).status == 200);  // idempotent

  // A directory; a parent that existed before stays.
  const fs::path dir = t / "newdir";
  auto b = create(c, "file", "add", {{"filepath", dir.string()}, {"directory", true}});
  REQUIRE(b.status == 201);
  CHECK(fs::is_directory(dir));
  CHECK(destroy(c, b.uid()).status == 200);
  CHECK_FALSE(fs::exists(dir));
  CHECK(fs::is_directory(t.path()));

  // Never over something already there; bad base64 and a missing parent are refused.
  const fs::path there = t / "there";
  make_file(there, "keep");
  const Snapshot before = snap(there);
  auto e = create(c, "file", "add", {{"filepath", there.string()}, {"content", "x"}});
  CHECK(e.status == 409);
  CHECK(e.message().find("filepath: ") == 0);
  auto bad =
      create(c, "file", "add",
             {{"filepath", (t / "b64").string()}, {"content", "a*b"}, {"enable-base64", true}});
  CHECK(bad.status == 400);
  CHECK(bad.message().find("content: ") == 0);
  auto orphan = create(c, "file", "add", {{"filepath", (t / "no/such/f").string()}});
  CHECK(orphan.status == 400);
  CHECK(snap(there) == before);
  CHECK_FALSE(fs::exists(t / "b64"));
  CHECK_FALSE(fs::exists(t / "no"));
}

TEST_CASE("file append appends count times, interval apart; destroy truncates back") {
  BladedProcess d(os_options());
  auto c = d.client();
  TempDir t("os-file-append");
  const fs::path log = t / "app.log";
  make_file(log, "line one\n", 0604);
  set_mtime(log, 1000000000);
  const Snapshot before = snap(log);

  const auto start = std::chrono::steady_clock::now();
  auto a = create(c, "file", "append",
                  {{"filepath", log.string()},
                   {"content", "ERR\\tboom\\n"},
                   {"escape", true},
                   {"count", 3},
                   {"interval", 1}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  CHECK(read_text(log) == "line one\nERR\tboom\n");  // the first at once
  const std::string three = "line one\nERR\tboom\nERR\tboom\nERR\tboom\n";
  REQUIRE(eventually([&] { return read_text(log) == three; }, std::chrono::seconds(10)));
  // Two more appends, each an interval (1 s) apart.
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(1900));

  CHECK(destroy(c, a.uid()).status == 200);
  Snapshot after = snap(log);
  CHECK(after.bytes == before.bytes);
  CHECK(after.mode == before.mode);
  CHECK(after.uid == 1234);
  CHECK(after.gid == 1234);
  CHECK(destroy(c, a.uid()).status == 200);

  // Destroy mid-way stops the thread: no append after it.
  auto b = create(c, "file", "append",
                  {{"filepath", log.string()}, {"content", "x"}, {"count", 100}, {"interval", 1}});
  REQUIRE(b.status == 201);
  REQUIRE(eventually([&] { return read_text(log).size() >= before.bytes.size() + 2; }));
  CHECK(destroy(c, b.uid()).status == 200);
  CHECK(read_text(log) == before.bytes);
  CHECK_FALSE(
      eventually([&] { return read_text(log) != before.bytes; }, std::chrono::milliseconds(1500)));

  auto missing =
      create(c, "file", "append", {{"filepath", (t / "nope").string()}, {"content", "x"}});
  CHECK(missing.status == 400);
  CHECK_FALSE(fs::exists(t / "nope"));
}

TEST_CASE("file chmod changes the mode and destroy puts the old one back") {
  BladedProcess d(os_options());
  auto c = d.client();
  TempDir t("os-file-chmod");
  const fs::path conf = t / "app.conf";
  make_file(conf, "k=v\n", 02640);
  const Snapshot before = snap(conf);

  auto a = create(c, "file", "chmod", {{"filepath", conf.string()}, {"mark", "000"}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  CHECK((snap(conf).mode & 07777) == 0);
  CHECK(destroy(c, a.uid()).status == 200);
  CHECK(snap(conf) == before);
  CHECK(destroy(c, a.uid()).status == 200);

  for (const char *mark : {"9", "12345", "rwx", "-1"}) {
    CAPTURE(mark);
    auto bad = create(c, "file", "chmod", {{"filepath", conf.string()}, {"mark", mark}});
    CHECK(bad.status == 400);
    CHECK(bad.message().find("mark: ") == 0);
  }
  auto missing = create(c, "file", "chmod", {{"filepath", (t / "gone").string()}, {"mark", "777"}});
  CHECK(missing.status == 400);
  CHECK(missing.message().find("filepath: ") == 0);
  CHECK(snap(conf) == before);
}

TEST_CASE("file delete backs the file up and destroy brings it back identical") {
  BladedProcess d(os_options());
  auto c = d.client();
  TempDir t("os-file-delete");
  const fs::path f = t / "secret.bin";
  make_file(f, std::string("\0\1\2binary\xff", 10), 04750);
  set_mtime(f, 1234567890);
  const Snapshot before = snap(f);
  REQUIRE((before.mode & 07777) == 04750);

  // Dry run names the file and changes nothing.
  auto dry = create(c, "file", "delete", {{"filepath", f.string()}}, true);
  CHECK(dry.status == 200);
  CHECK(dry.body.dump().find(f.string()) != std::string::npos);
  CHECK(snap(f) == before);

  auto a = create(c, "file", "delete", {{"filepath", f.string()}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  CHECK_FALSE(fs::exists(f));
  CHECK(destroy(c, a.uid()).status == 200);
  CHECK(snap(f) == before);
  CHECK(destroy(c, a.uid()).status == 200);
  CHECK_FALSE(fs::exists(backup_dir(d, a.uid())));

  // Something new at the path is never overwritten.
  auto b = create(c, "file", "delete", {{"filepath", f.string()}});
  REQUIRE(b.status == 201);
  spit(f, "newcomer");
  CHECK(destroy(c, b.uid()).status != 200);
  CHECK(read_text(f) == "newcomer");
  fs::remove(f);
  CHECK(destroy(c, b.uid()).status == 200);
  CHECK(snap(f) == before);

  // A directory needs force, and comes back whole.
  const fs::path dir = t / "data";
  fs::create_directories(dir / "sub");
  make_file(dir / "sub" / "x", "x", 0600);
  REQUIRE(::chown(dir.c_str(), 1234, 1234) == 0);
  const Snapshot dir_before = snap(dir), x_before = snap(dir / "sub" / "x");
  auto nf = create(c, "file", "delete", {{"filepath", dir.string()}});
  CHECK(nf.status == 400);
  CHECK(fs::exists(dir / "sub" / "x"));
  auto dd = create(c, "file", "delete", {{"filepath", dir.string()}, {"force", true}});
  REQUIRE(dd.status == 201);
  CHECK_FALSE(fs::exists(dir));
  CHECK(destroy(c, dd.uid()).status == 200);
  CHECK(snap(dir).uid == dir_before.uid);
  CHECK(snap(dir).mode == dir_before.mode);
  CHECK(snap(dir / "sub" / "x") == x_before);

  // Bad input changes nothing.
  auto rel = create(c, "file", "delete", {{"filepath", "relative/path"}});
  CHECK(rel.status == 400);
  CHECK(rel.field() == "flags.filepath");
  auto missing = create(c, "file", "delete", {{"filepath", (t / "absent").string()}});
  CHECK(missing.status == 400);
  CHECK(missing.message().find("filepath: ") == 0);
}

TEST_CASE("file delete on another filesystem is copied and restored with mode and owner") {
  // /dev/shm is a tmpfs apart from the state dir on most hosts: the
  // backup is a copy, not a rename.
  REQUIRE(fs::is_directory("/dev/shm"));
  BladedProcess d(os_options());
  auto c = d.client();
  const fs::path f = "/dev/shm/blade-file-test-" + std::to_string(::getpid());
  make_file(f, "on tmpfs\n", 0751);
  set_mtime(f, 1111111111);
  const Snapshot before = snap(f);
  auto a = create(c, "file", "delete", {{"filepath", f.string()}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  CHECK_FALSE(fs::exists(f));
  CHECK(destroy(c, a.uid()).status == 200);
  CHECK(snap(f) == before);
  fs::remove(f);
}

TEST_CASE("file move moves it away and back, restoring what it replaced") {
  BladedProcess d(os_options());
  auto c = d.client();
  TempDir t("os-file-move");
  const fs::path f = t / "app.conf";
  make_file(f, "original\n", 0620);
  set_mtime(f, 1200000000);
  const Snapshot before = snap(f);

  // Into a directory that auto-create-dir makes.
  auto a = create(c, "file", "move",
                  {{"filepath", f.string()},
                   {"target", (t / "moved/here/").string()},
                   {"auto-create-dir", true}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  CHECK_FALSE(fs::exists(f));
  CHECK(read_text(t / "moved/here/app.conf") == "original\n");
  CHECK(destroy(c, a.uid()).status == 200);
  CHECK(snap(f) == before);
  CHECK_FALSE(fs::exists(t / "moved"));
  CHECK(destroy(c, a.uid()).status == 200);

  // Onto an existing file: refused without force; with force it is replaced
  // and comes back on destroy.
  const fs::path other = t / "other.conf";
  make_file(other, "other\n", 0604);
  const Snapshot other_before = snap(other);
  auto no = create(c, "file", "move", {{"filepath", f.string()}, {"target", other.string()}});
  CHECK(no.status == 409);
  CHECK(no.message().find("target: ") == 0);
  CHECK(snap(f) == before);
  auto b = create(c, "file", "move",
                  {{"filepath", f.string()}, {"target", other.string()}, {"force", true}});
  REQUIRE_MESSAGE(b.status == 201, b.body.dump());
  CHECK(read_text(other) == "original\n");
  CHECK_FALSE(fs::exists(f));
  CHECK(destroy(c, b.uid()).status == 200);
  CHECK(snap(f) == before);
  CHECK(snap(other) == other_before);

  auto missing = create(c, "file", "move",
                        {{"filepath", (t / "absent").string()}, {"target", t.path().string()}});
  CHECK(missing.status == 400);
  CHECK(missing.message().find("filepath: ") == 0);
}

TEST_CASE("a file delete active when bladed is SIGKILLed is restored at the next start") {
  TempDir t("os-file-recover");
  const fs::path f = t / "precious";
  make_file(f, "do not lose me\n", 0441);
  set_mtime(f, 1300000000);
  const Snapshot before = snap(f);

  BladedProcess first(os_options());
  auto c = first.client();
  auto a = create(c, "file", "delete", {{"filepath", f.string()}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  CHECK_FALSE(fs::exists(f));
  first.crash();
  CHECK_FALSE(fs::exists(f));  // the fault outlived its daemon
  CHECK(fs::exists(backup_dir(first, a.uid())));

  // A new bladed on the same state dir (and store) recovers at start.
  first.restart();  // returns once recovery has run
  CHECK(snap(f) == before);
  CHECK_FALSE(fs::exists(backup_dir(first, a.uid())));
  auto c2 = first.client();
  const auto x = experiment(c2, a.uid());
  REQUIRE(x.is_object());
  CHECK(x["status"] == "destroyed");
}
