// file add | append | chmod | delete | move against a real bladed: the effect
// on the filesystem, and after destroy the bytes, mode, owner and times of
// what was there before, exactly.
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "../support/scratch_fs.hpp"
#include "../support/temp_dir.hpp"
#include "os_test_support.hpp"

namespace fs = std::filesystem;
using namespace blade::test;
using namespace blade::test::os;

namespace {

std::vector<std::string> entries_of(const fs::path &dir) {
  std::vector<std::string> names;
  for (const auto &e : fs::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  return names;
}

void set_mtime(const fs::path &p, long seconds) {
  const struct timeval tv[2] = {{seconds, 0}, {seconds, 0}};
  REQUIRE(::lutimes(p.c_str(), tv) == 0);
}

// The lines of `text` after its first `skip` bytes.
std::vector<std::string> lines_after(const std::string &text, std::size_t skip) {
  std::vector<std::string> out;
  std::istringstream in(text.substr(skip));
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
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

TEST_CASE("file append without interval appends count lines once; destroy truncates back") {
  BladedProcess d(os_options());
  auto c = d.client();
  TempDir t("os-file-append");
  const fs::path log = t / "app.log";
  make_file(log, "line one\n", 0604);
  set_mtime(log, 1000000000);
  const Snapshot before = snap(log);

  auto a = create(c, "file", "append",
                  {{"filepath", log.string()},
                   {"content", "ERR\\tboom\\x21"},
                   {"escape", true},
                   {"count", 3}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  CHECK(a.body["data"]["result"]["repeats_until_destroyed"] == false);
  const std::string three = "line one\nERR\tboom!\nERR\tboom!\nERR\tboom!\n";
  CHECK(read_text(log) == three);  // all count lines at once, each ended as echo ends it
  // No interval: once, and nothing more.
  CHECK_FALSE(
      eventually([&] { return read_text(log) != three; }, std::chrono::milliseconds(1500)));
  CHECK(destroy(c, a.uid()).status == 200);
  Snapshot after = snap(log);
  CHECK(after == before);  // bytes, mode, owner and mtime
  CHECK(destroy(c, a.uid()).status == 200);

  // enable-base64, as ChaosBlade's example (SEVMTE8gV09STEQ= is "HELLO WORLD").
  auto b = create(c, "file", "append",
                  {{"filepath", log.string()},
                   {"content", "SEVMTE8gV09STEQ="},
                   {"enable-base64", true}});
  REQUIRE_MESSAGE(b.status == 201, b.body.dump());
  CHECK(read_text(log) == "line one\nHELLO WORLD\n");
  CHECK(destroy(c, b.uid()).status == 200);
  CHECK(snap(log) == before);

  auto missing =
      create(c, "file", "append", {{"filepath", (t / "nope").string()}, {"content", "x"}});
  CHECK(missing.status == 400);
  CHECK_FALSE(fs::exists(t / "nope"));
}

TEST_CASE("file append with interval appends count lines every interval until destroyed") {
  BladedProcess d(os_options());
  auto c = d.client();
  TempDir t("os-file-append-interval");
  const fs::path log = t / "app.log";
  make_file(log, "start\n", 0644);
  const Snapshot before = snap(log);
  const std::size_t base = before.bytes.size();

  const auto start = std::chrono::steady_clock::now();
  auto a = create(c, "file", "append",
                  {{"filepath", log.string()}, {"content", "tick"}, {"count", 2}, {"interval", 1}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  CHECK(lines_after(read_text(log), base).size() == 2);  // the first tick at once
  // Four more ticks: beyond any count, it goes on until destroyed.
  REQUIRE(eventually([&] { return lines_after(read_text(log), base).size() >= 10; },
                     std::chrono::seconds(15)));
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(3900));
  for (const auto &line : lines_after(read_text(log), base))
    CHECK(line == "tick");
  CHECK(lines_after(read_text(log), base).size() % 2 == 0);  // whole ticks only

  CHECK(destroy(c, a.uid()).status == 200);
  CHECK(snap(log) == before);
  // Destroyed: no tick after it.
  CHECK_FALSE(
      eventually([&] { return read_text(log) != before.bytes; }, std::chrono::milliseconds(1500)));
}

TEST_CASE("file append expands @{DATE:+fmt} and @{RANDOM:a-b} for every line") {
  BladedProcess d(os_options());
  auto c = d.client();
  TempDir t("os-file-append-template");
  const fs::path log = t / "app.log";
  make_file(log, "", 0644);

  const std::time_t now = std::time(nullptr);
  // ChaosBlade's own example line, and an escaped template kept as text.
  auto a = create(c, "file", "append",
                  {{"filepath", log.string()},
                   {"content",
                    "@{DATE:+%Y-%m-%d %H:%M:%S} ERROR invoke getUser timeout "
                    "[@{RANDOM:100-200}]ms \\@{RANDOM:1-2}"},
                   {"count", 30}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  const auto lines = lines_after(read_text(log), 0);
  REQUIRE(lines.size() == 30);
  const std::regex shape(
      R"(^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) ERROR invoke getUser timeout \[(\d+)\]ms @\{RANDOM:1-2\}$)");
  std::set<int> drawn;
  for (const auto &line : lines) {
    CAPTURE(line);
    std::smatch m;
    REQUIRE(std::regex_match(line, m, shape));
    struct tm tm {};
    REQUIRE(::strptime(m[1].str().c_str(), "%Y-%m-%d %H:%M:%S", &tm) != nullptr);
    tm.tm_isdst = -1;
    CHECK(std::llabs(static_cast<long long>(std::mktime(&tm) - now)) <= 5);
    const int n = std::stoi(m[2].str());
    CHECK(n >= 100);
    CHECK(n < 200);  // ChaosBlade draws from [a, b)
    drawn.insert(n);
  }
  CHECK(drawn.size() > 1);  // drawn afresh for each line
  CHECK(destroy(c, a.uid()).status == 200);
  CHECK(read_text(log).empty());

  // %N is date(1)'s nanoseconds.
  auto ns = create(c, "file", "append", {{"filepath", log.string()}, {"content", "@{DATE:+%s.%N}"}});
  REQUIRE_MESSAGE(ns.status == 201, ns.body.dump());
  CHECK(std::regex_match(read_text(log), std::regex(R"(^\d{10}\.\d{9}\n$)")));
  CHECK(destroy(c, ns.uid()).status == 200);
  CHECK(read_text(log).empty());

  // A DATE without '+' (date(1) would take it as a time to set) and an
  // empty RANDOM range are refused on the content, and nothing is written.
  for (const char *bad : {"@{DATE:%Y}", "x @{RANDOM:5-5}", "@{RANDOM:9-3}"}) {
    CAPTURE(bad);
    auto r = create(c, "file", "append", {{"filepath", log.string()}, {"content", bad}});
    CHECK(r.status == 400);
    CHECK(r.message().find("content: ") == 0);
  }
  CHECK(read_text(log).empty());
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

  // Exactly 3 octal digits, as ChaosBlade checks it.
  for (const char *mark : {"9", "77", "0644", "4755", "12345", "rwx", "-1", "778"}) {
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

  // A directory is deleted without force, as ChaosBlade's, and comes back whole.
  const fs::path dir = t / "data";
  fs::create_directories(dir / "sub");
  make_file(dir / "sub" / "x", "x", 0600);
  REQUIRE(::chown(dir.c_str(), 1234, 1234) == 0);
  const Snapshot dir_before = snap(dir), x_before = snap(dir / "sub" / "x");
  auto dd = create(c, "file", "delete", {{"filepath", dir.string()}});
  REQUIRE_MESSAGE(dd.status == 201, dd.body.dump());
  CHECK(dd.body["data"]["result"]["directory"] == true);
  CHECK_FALSE(fs::exists(dir));
  CHECK(destroy(c, dd.uid()).status == 200);
  CHECK(snap(dir).uid == dir_before.uid);
  CHECK(snap(dir).mode == dir_before.mode);
  CHECK(snap(dir / "sub" / "x") == x_before);
  CHECK_FALSE(fs::exists(backup_dir(d, dd.uid())));

  // --force (ChaosBlade: gone for good) is accepted; Blade still restores,
  // and says so.
  auto forced = create(c, "file", "delete", {{"filepath", f.string()}, {"force", true}});
  REQUIRE_MESSAGE(forced.status == 201, forced.body.dump());
  CHECK_FALSE(fs::exists(f));
  CHECK(forced.body["data"]["result"]["note"].get<std::string>().find("puts it back") !=
        std::string::npos);
  CHECK(destroy(c, forced.uid()).status == 200);
  CHECK(snap(f) == before);
  CHECK_FALSE(fs::exists(backup_dir(d, forced.uid())));

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

TEST_CASE("file move moves it into the target directory and back, restoring what it replaced") {
  BladedProcess d(os_options());
  auto c = d.client();
  TempDir t("os-file-move");
  const fs::path f = t / "app.conf";
  make_file(f, "original\n", 0620);
  set_mtime(f, 1200000000);
  const Snapshot before = snap(f);

  // Into an existing directory, keeping its name (no trailing slash needed).
  const fs::path into = t / "into";
  fs::create_directories(into);
  auto plain = create(c, "file", "move", {{"filepath", f.string()}, {"target", into.string()}});
  REQUIRE_MESSAGE(plain.status == 201, plain.body.dump());
  CHECK_FALSE(fs::exists(f));
  CHECK(read_text(into / "app.conf") == "original\n");
  CHECK(destroy(c, plain.uid()).status == 200);
  CHECK(snap(f) == before);
  CHECK(entries_of(into).empty());

  // Into a directory that auto-create-dir makes (and destroy removes).
  auto a = create(c, "file", "move",
                  {{"filepath", f.string()},
                   {"target", (t / "moved/here").string()},
                   {"auto-create-dir", true}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  CHECK_FALSE(fs::exists(f));
  CHECK(read_text(t / "moved/here/app.conf") == "original\n");
  CHECK(destroy(c, a.uid()).status == 200);
  CHECK(snap(f) == before);
  CHECK_FALSE(fs::exists(t / "moved"));
  CHECK(destroy(c, a.uid()).status == 200);

  // A file of the same name in the target directory: refused without force;
  // with force it is backed up, replaced, and comes back on destroy.
  const fs::path other = into / "app.conf";
  make_file(other, "other\n", 0604);
  set_mtime(other, 1100000000);
  const Snapshot other_before = snap(other);
  auto no = create(c, "file", "move", {{"filepath", f.string()}, {"target", into.string()}});
  CHECK(no.status == 409);
  CHECK(no.message().find("target: ") == 0);
  CHECK(snap(f) == before);
  auto b = create(c, "file", "move",
                  {{"filepath", f.string()}, {"target", into.string()}, {"force", true}});
  REQUIRE_MESSAGE(b.status == 201, b.body.dump());
  CHECK(b.body["data"]["result"]["replaced"] == true);
  CHECK(read_text(other) == "original\n");
  CHECK_FALSE(fs::exists(f));
  CHECK(destroy(c, b.uid()).status == 200);
  CHECK(snap(f) == before);
  CHECK(snap(other) == other_before);  // bytes, mode, owner, mtime
  CHECK(entries_of(into) == std::vector<std::string>{"app.conf"});
  CHECK_FALSE(fs::exists(backup_dir(d, b.uid())));

  // The target is a directory: a file there, a missing one without
  // auto-create-dir, or a relative one are refused on the field.
  auto onto_file = create(c, "file", "move", {{"filepath", f.string()}, {"target", other.string()}});
  CHECK(onto_file.status == 400);
  CHECK(onto_file.message().find("target: ") == 0);
  CHECK(onto_file.message().find("not a directory") != std::string::npos);
  auto no_dir = create(c, "file", "move",
                       {{"filepath", f.string()}, {"target", (t / "nowhere").string()}});
  CHECK(no_dir.status == 400);
  CHECK(no_dir.message().find("target: ") == 0);
  auto rel = create(c, "file", "move", {{"filepath", f.string()}, {"target", "tmp"}});
  CHECK(rel.status == 400);
  CHECK(rel.field() == "flags.target");
  CHECK(snap(f) == before);
  CHECK(snap(other) == other_before);
  CHECK_FALSE(fs::exists(t / "nowhere"));

  auto missing = create(c, "file", "move",
                        {{"filepath", (t / "absent").string()}, {"target", t.path().string()}});
  CHECK(missing.status == 400);
  CHECK(missing.message().find("filepath: ") == 0);
}

TEST_CASE("a relative filepath over HTTP is a 400 naming the field, for every file action") {
  BladedProcess d(os_options());
  auto c = d.client();
  const std::pair<const char *, json> cases[] = {
      {"add", {{"content", "x"}}},  {"append", {{"content", "x"}}}, {"chmod", {{"mark", "644"}}},
      {"delete", json::object()},   {"move", {{"target", "/tmp"}}},
  };
  for (const auto &[action, flags] : cases) {
    CAPTURE(action);
    json all = flags;
    all["filepath"] = "app.log";
    auto r = create(c, "file", action, all);
    CHECK(r.status == 400);
    CHECK(r.field() == "flags.filepath");
    CHECK(r.message().find("absolute") != std::string::npos);
  }
}

TEST_CASE("file fdleak holds percent of a filesystem with a nameless open file") {
  ScratchFs t("tmpfs", 64);
  BladedProcess d(os_options());
  auto c = d.client();
  auto usage = [&] {
    struct statvfs s {};
    REQUIRE(::statvfs(t.path().c_str(), &s) == 0);
    return std::pair<std::uint64_t, std::uint64_t>{s.f_blocks * s.f_frsize,
                                                   s.f_bavail * s.f_frsize};
  };
  // The daemon's descriptors that point into the scratch filesystem.
  auto held = [&] {
    int n = 0;
    const fs::path fds = "/proc/" + std::to_string(d.process->pid()) + "/fd";
    for (const auto &e : fs::directory_iterator(fds)) {
      std::error_code ec;
      const auto target = fs::read_symlink(e.path(), ec).string();
      if (!ec && target.rfind(t.path().string() + "/", 0) == 0) ++n;
    }
    return n;
  };
  const auto [size, empty] = usage();

  // ChaosBlade's example, on the scratch filesystem.
  auto a = create(c, "file", "fdleak",
                  {{"percent", "50%"}, {"directory", t.path().string()}, {"prefix", "chaos_test_"}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  CHECK(a.body["data"]["result"]["bytes"] == size / 100 * 50);
  const std::uint64_t taken = empty - usage().second;
  MESSAGE("fdleak: " << taken << " bytes taken of " << size);
  CHECK(taken >= size / 100 * 50);
  CHECK(taken - size / 100 * 50 < 4096);  // rounded up to a page
  CHECK(fs::is_empty(t.path()));  // ls finds nothing
  CHECK(held() == 1);             // the daemon holds it: "/...scratch/#123 (deleted)"
  CHECK(destroy(c, a.uid()).status == 200);
  CHECK(usage().second == empty);
  CHECK(held() == 0);
  CHECK(destroy(c, a.uid()).status == 200);

  // A crash of the daemon frees it too: nothing to recover.
  auto b = create(c, "file", "fdleak", {{"percent", "25"}, {"directory", t.path().string()}});
  REQUIRE_MESSAGE(b.status == 201, b.body.dump());
  CHECK(usage().second < empty);
  d.crash();
  CHECK(usage().second == empty);
  d.restart();
  auto c2 = d.client();
  CHECK(fs::is_empty(t.path()));

  // Bad input is a 400 on the field, and takes nothing.
  for (const char *bad : {"0", "101", "abc", "50%%", ""}) {
    CAPTURE(bad);
    auto r = create(c2, "file", "fdleak", {{"percent", bad}, {"directory", t.path().string()}});
    CHECK(r.status == 400);
    CHECK(r.field() == "flags.percent");
  }
  auto whole = create(c2, "file", "fdleak", {{"percent", "100"}, {"directory", t.path().string()}});
  CHECK(whole.status == 201);  // a tmpfs has no reserve: all of it is available
  CHECK(destroy(c2, whole.uid()).status == 200);
  auto state = create(c2, "file", "fdleak", {{"percent", "1"}, {"directory", (d.dir / "state").string()}});
  CHECK(state.status == 400);
  CHECK(state.field() == "flags.directory");
  auto nodir = create(c2, "file", "fdleak", {{"percent", "1"}, {"directory", (t / "none").string()}});
  CHECK(nodir.status == 400);
  CHECK(nodir.field() == "flags.directory");
  CHECK(usage().second == empty);
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
