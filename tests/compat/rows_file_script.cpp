// file and script rows. Every absolute path of an example is moved under the
// row's own temp dir (/home/logs/nginx.log -> <dir>/home/logs/nginx.log), which
// starts with home/logs/nginx.log and tmp/; a relative script path stays
// relative and blade runs in that dir. After destroy the whole dir must be as
// it was: every entry, its bytes, mode, owner and (for files) mtime.
#include <regex>

#include "../os/os_test_support.hpp"
#include "../support/eventually.hpp"
#include "../support/temp_dir.hpp"
#include "command_words.hpp"
#include "example_row.hpp"

namespace blade::test::compat {
namespace {

using namespace std::chrono_literals;
using os::make_file;
using os::snap;
using os::Snapshot;

const std::string kLog = "line one of the log\n";

// Every entry under `root` as it is now. A directory's mtime moves whenever
// an entry comes and goes, so only its mode and owner count.
std::map<std::string, Snapshot> dir_state(const fs::path &root) {
  std::map<std::string, Snapshot> out;
  for (const auto &e : fs::recursive_directory_iterator(root)) {
    Snapshot s = snap(e.path());
    if (S_ISDIR(s.mode)) s.mtime_ns = 0;
    out[fs::relative(e.path(), root).string()] = s;
  }
  return out;
}

std::string differences(const std::map<std::string, Snapshot> &before,
                        const std::map<std::string, Snapshot> &after) {
  std::string out;
  for (const auto &[path, s] : before) {
    auto it = after.find(path);
    if (it == after.end()) out += " " + path + " is gone;";
    else if (!(it->second == s)) {
      std::ostringstream d;
      d << " " << path << " was " << s << " is " << it->second << ";";
      out += d.str();
    }
  }
  for (const auto &[path, s] : after)
    if (!before.count(path)) out += " " + path + " was left;";
  return out;
}

struct FileCase {
  TempDir root{"compat-file"};
  std::map<std::string, Snapshot> before;
  fs::path log() const { return root / "home/logs/nginx.log"; }
};

// The row's dir with home/logs/nginx.log and tmp/, the example's paths moved
// under it, and the clean check comparing the whole dir with how it was.
using FileEffect = std::function<Outcome(FileCase &)>;

Fixture file_fixture(const std::string &example, FileEffect effect,
                     const std::function<void(FileCase &)> &extra = {}) {
  auto c = std::make_shared<FileCase>();
  fs::create_directories(c->root / "home/logs");
  fs::create_directories(c->root / "tmp");
  make_file(c->log(), kLog);
  if (extra) extra(*c);
  c->before = dir_state(c->root.path());
  Fixture fx;
  fx.words = rebased(command_words(example), c->root.path());
  fx.substituted = "paths under " + c->root.path().string();
  fx.effect = [c, effect](const std::string &) { return effect(*c); };
  fx.clean = [c](const std::string &) {
    const auto diff = differences(c->before, dir_state(c->root.path()));
    return Outcome{diff.empty(), diff.empty() ? "the dir is as before" : "left:" + diff};
  };
  return fx;
}

// What was appended to the log by now (when it still starts with the original).
std::string appended(const FileCase &c) {
  const std::string now = read_text(c.log());
  return now.rfind(kLog, 0) == 0 ? now.substr(kLog.size()) : "<log rewritten: " + now + ">";
}

Outcome appended_is(const FileCase &c, const std::string &want) {
  std::string got;
  const bool ok = eventually([&] { return (got = appended(c)) == want; }, 3s);
  return {ok, "appended \"" + got + "\"" + (ok ? "" : ", expected \"" + want + "\"")};
}

Outcome exists_as(const fs::path &p, fs::file_type type, const std::string &bytes = "") {
  const auto st = fs::symlink_status(p);
  if (st.type() != type) return failed(p.string() + " is not there as expected");
  if (type == fs::file_type::regular) {
    const std::string got = read_text(p);
    if (got != bytes) return failed(p.string() + " holds \"" + got + "\", expected \"" + bytes + "\"");
  }
  return held(p.string() + " is there");
}

// A file row: `extra` adds to the dir before the snapshot, `adjust` changes
// what runs (and says why).
Row file_row(std::string example, FileEffect effect,
             std::function<void(FileCase &)> extra = {},
             std::function<void(Fixture &)> adjust = {}) {
  return {"file", example, [=](Env &) {
            Fixture fx = file_fixture(example, effect, extra);
            if (adjust) adjust(fx);
            return fx;
          }};
}

Outcome log_moved_to(FileCase &c, const std::string &dir) {
  if (fs::exists(c.log())) return failed("the log is still in home/logs");
  return exists_as(c.root / dir / "nginx.log", fs::file_type::regular, kLog);
}

Outcome log_gone(FileCase &c) { return Outcome{!fs::exists(c.log()), "the log is gone"}; }

// test.sh as ChaosBlade's example names it (relative), in a dir blade runs in.
const std::string kScript =
    "#!/bin/bash\n"
    "start0() {\n"
    "  echo start0 ran\n"
    "}\n"
    "start0\n"
    "echo script done\n";

struct ScriptRun {
  int code = -1;
  std::string output;
  double seconds = 0;
};

ScriptRun run_script(const fs::path &dir) {
  const auto log = dir / "run.log";
  fs::remove(log);
  const auto t0 = std::chrono::steady_clock::now();
  ChildProcess p({"/bin/bash", (dir / "work/test.sh").string()}, {}, log.string());
  ScriptRun r;
  r.code = p.exit_code(30s).value_or(-1);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.output = read_text(log);
  fs::remove(log);
  return r;
}

// A script row: `flag` (name, value) replaces one of the example's flags.
Row script_row(std::string example, std::string substituted,
               std::pair<std::string, std::string> flag,
               std::function<Outcome(const ScriptRun &)> effect) {
  return {"script", example, [=](Env &) {
            auto dir = std::make_shared<TempDir>("compat-script");
            fs::create_directories(*dir / "work");
            const auto script = *dir / "work/test.sh";
            make_file(script, kScript, 0755);
            const Snapshot before = snap(script);
            Fixture fx;
            fx.words = command_words(example);
            if (!flag.first.empty()) fx.words = with_flag(fx.words, flag.first, flag.second);
            fx.cwd = *dir / "work";
            fx.substituted = (substituted.empty() ? "" : substituted + "; ") +
                             "test.sh relative: blade runs in " + fx.cwd.string();
            fx.effect = [dir, effect](const std::string &) { return effect(run_script(dir->path())); };
            fx.clean = [dir, script, before](const std::string &) {
              if (!(snap(script) == before)) return failed("test.sh differs from before");
              const auto r = run_script(dir->path());
              const bool ok = r.code == 0 && r.output == "start0 ran\nscript done\n" && r.seconds < 1;
              return Outcome{ok, "test.sh as before; runs in " +
                                     std::to_string(r.seconds).substr(0, 4) + " s, exit " +
                                     std::to_string(r.code)};
            };
            return fx;
          }};
}

}  // namespace

std::vector<Row> file_script_rows() {
  using fs::file_type;
  return {
      file_row("blade create file add --filepath /home/nginx.log",
               [](FileCase &c) { return exists_as(c.root / "home/nginx.log", file_type::regular); }),
      // ChaosBlade writes the content with echo: one line.
      file_row("blade create file add --filepath /home/nginx.log --content \"HELLO WORLD\"",
               [](FileCase &c) {
                 return exists_as(c.root / "home/nginx.log", file_type::regular, "HELLO WORLD\n");
               }),
      file_row("blade create file add --filepath /temp/nginx.log --auto-create-dir",
               [](FileCase &c) { return exists_as(c.root / "temp/nginx.log", file_type::regular); }),
      file_row("blade create file add --directory --filepath /temp/nginx --auto-create-dir",
               [](FileCase &c) { return exists_as(c.root / "temp/nginx", file_type::directory); }),
      file_row("blade create file append --filepath=/home/logs/nginx.log --content=\"HELL WORLD\"",
               [](FileCase &c) { return appended_is(c, "HELL WORLD\n"); }),
      file_row(
          "blade create file append --filepath=/home/logs/nginx.log --content=\"HELL WORLD\" "
          "--interval 10",
          [](FileCase &c) {
            // Once at create, then once a second: at least three lines by 2.5 s.
            std::this_thread::sleep_for(2500ms);
            const std::string got = appended(c);
            std::size_t lines = 0;
            for (std::size_t at = 0; (at = got.find("HELL WORLD\n", at)) != std::string::npos;
                 at += 11)
              ++lines;
            const bool ok = lines >= 3 && got.size() == lines * 11;
            return Outcome{ok, std::to_string(lines) + " lines appended in 2.5 s (\"" +
                                   got.substr(0, 40) + "\")"};
          },
          {},
          [](Fixture &fx) {
            fx.words = with_flag(fx.words, "interval", "1");
            fx.substituted += "; --interval 1 for 10, to see it repeat within a short row";
          }),
      file_row("blade create file append --filepath=/home/logs/nginx.log --content=SEVMTE8gV09STEQ=",
               [](FileCase &c) { return appended_is(c, "SEVMTE8gV09STEQ=\n"); }),
      file_row(
          "blade create file append --filepath=/home/logs/nginx.log --content=\"@{DATE:+%Y-%m-%d "
          "%H:%M:%S} ERROR invoke getUser timeout [@{RANDOM:100-200}]ms abc  mock exception\"",
          [](FileCase &c) {
            static const std::regex line(
                R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ERROR invoke getUser timeout \[(\d+)\]ms abc  mock exception\n)");
            std::string got;
            std::smatch m;
            const bool ok = eventually(
                [&] {
                  got = appended(c);
                  return std::regex_match(got, m, line) && std::stoi(m[1]) >= 100 &&
                         std::stoi(m[1]) <= 200;
                },
                3s);
            return Outcome{ok, "appended \"" + got + "\""};
          }),
      file_row("blade create file chmod --filepath /home/logs/nginx.log --mark=777",
               [](FileCase &c) {
                 const auto mode = snap(c.log()).mode & 07777;
                 std::ostringstream what;
                 what << "mode " << std::oct << mode;
                 return Outcome{mode == 0777, what.str()};
               }),
      file_row("blade create file delete --filepath /home/logs/nginx.log", log_gone),
      file_row("blade create file delete --filepath /home/logs/nginx.log --force", log_gone, {},
               [](Fixture &fx) {
                 fx.substituted += "; Blade keeps a forced delete restorable (destroy brings it back)";
               }),
      file_row("blade create file move --filepath /home/logs/nginx.log --target /tmp",
               [](FileCase &c) { return log_moved_to(c, "tmp"); }),
      file_row("blade create file move --filepath /home/logs/nginx.log --target /tmp --force",
               [](FileCase &c) { return log_moved_to(c, "tmp"); },
               // What --force overwrites, and destroy must put back.
               [](FileCase &c) { make_file(c.root / "tmp/nginx.log", "an older log\n"); }),
      file_row("blade create file move --filepath /home/logs/nginx.log --target /temp --auto-create-dir",
               [](FileCase &c) { return log_moved_to(c, "temp"); }),

      script_row("blade create script delay --time 10000 --file test.sh --function-name start0",
                 "--time 1500 for 10000, to keep the row short", {"time", "1500"},
                 [](const ScriptRun &r) {
                   const bool ok = r.code == 0 && r.seconds >= 1.4 &&
                                   r.output == "start0 ran\nscript done\n";
                   return Outcome{ok, "test.sh took " + std::to_string(r.seconds).substr(0, 4) +
                                          " s, exit " + std::to_string(r.code)};
                 }),
      script_row("blade create script exit --exit-code 1 --exit-message this-is-error-message "
                 "--file test.sh --function-name start0",
                 "", {}, [](const ScriptRun &r) {
                   const bool ok = r.code == 1 &&
                                   r.output.find("this-is-error-message") != std::string::npos &&
                                   r.output.find("script done") == std::string::npos;
                   return Outcome{ok, "test.sh exit " + std::to_string(r.code) + ", printed \"" +
                                          r.output + "\""};
                 }),
  };
}

}  // namespace blade::test::compat
