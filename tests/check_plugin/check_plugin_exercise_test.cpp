// `bladed check-plugin --exercise` run as a process against every in-tree
// plugin (os, disk, the C marker, the SDK example) and against deliberately
// broken ones, checking the verdict lines, the exit status, and that the
// fault's effect on the host is gone afterwards.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../support/child_process.hpp"
#include "../support/file_text.hpp"
#include "../support/temp_dir.hpp"

namespace fs = std::filesystem;
using blade::test::read_text;
using blade::test::TempDir;

namespace {

const fs::path kBladed = BLADE_BLADED_PATH;
const fs::path kTestPlugins = BLADE_TEST_PLUGIN_DIR;
const fs::path kBuiltPlugins = BLADE_BUILT_PLUGIN_DIR;

struct Run {
  int code = -1;    // exit status, or -signal
  std::string out;  // stdout and stderr together
  std::chrono::milliseconds took{0};
};

// bladed with `args`; TMPDIR is `tmp`, so the private state dir it makes
// can be looked for afterwards.
Run bladed(const std::vector<std::string> &args, const fs::path &tmp) {
  TempDir io("check-plugin-io");
  std::vector<std::string> argv = {kBladed.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto start = std::chrono::steady_clock::now();
  blade::test::ChildProcess child(argv, {"TMPDIR=" + tmp.string()}, (io / "out").string());
  auto code = child.exit_code(std::chrono::minutes(2));
  REQUIRE_MESSAGE(code.has_value(), "bladed did not exit within 2 minutes");
  Run r;
  r.code = *code;
  r.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
  r.out = read_text(io / "out");
  return r;
}

std::vector<std::string> exercise(const fs::path &plugin, const std::string &target,
                                  const std::string &action,
                                  const std::vector<std::string> &flags = {}) {
  std::vector<std::string> args = {"check-plugin", "--exercise", plugin.string(), "--target",
                                   target,         "--action",   action};
  for (const auto &f : flags) {
    args.push_back("--flag");
    args.push_back(f);
  }
  return args;
}

bool has_line(const std::string &text, const std::string &prefix) {
  std::size_t at = 0;
  while (at < text.size()) {
    auto end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    if (text.compare(at, prefix.size(), prefix) == 0) return true;
    at = end + 1;
  }
  return false;
}

bool empty_dir(const fs::path &dir) {
  return fs::is_empty(dir);
}

// The eight steps of a clean run, each passed (dry run may be skipped).
void check_all_passed(const Run &r) {
  INFO(r.out);
  CHECK(r.code == 0);
  for (const char *step : {"PASS load: ", "PASS validate flags: ", "PASS create: status OK",
                           "PASS new instance: ", "PASS destroy: status OK",
                           "PASS destroy again: status OK", "PASS shutdown: "}) {
    CHECK_MESSAGE(has_line(r.out, step), step);
  }
  CHECK((has_line(r.out, "PASS dry run: ") || has_line(r.out, "SKIP dry run: ")));
  CHECK(has_line(r.out, "PASS exercise: "));
}

}  // namespace

TEST_CASE("the C marker plugin passes, and its marker file is gone afterwards") {
  TempDir tmp("check-plugin-tmp"), work("check-plugin-work");
  const fs::path marker = work / "m";
  auto r = bladed(
      exercise(kTestPlugins / "c_marker.so", "cmarker", "touch", {"path=" + marker.string()}),
      tmp.path());
  check_all_passed(r);
  CHECK(has_line(r.out, "PASS create: status OK; RESULT is JSON; RESTORE is JSON"));
  CHECK_FALSE(fs::exists(marker));
  // The private state dir went with the run.
  CHECK(empty_dir(tmp.path()));
}

TEST_CASE("--json prints the steps as one document, with the canonical action") {
  TempDir tmp("check-plugin-tmp"), work("check-plugin-work");
  auto args =
      exercise(kTestPlugins / "c_marker.so", "cmarker", "t", {"path=" + (work / "m").string()});
  args.push_back("--json");
  auto r = bladed(args, tmp.path());
  INFO(r.out);
  REQUIRE(r.code == 0);
  auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["verdict"] == "PASS");
  CHECK(doc["plugin"] == "c-marker");
  CHECK(doc["action"] == "touch");
  CHECK(doc["hung"] == false);
  CHECK(doc["flags"]["path"] == (work / "m").string());
  std::vector<std::string> names;
  for (const auto &s : doc["steps"])
    names.push_back(s["step"]);
  CHECK(names == std::vector<std::string>{"load", "validate flags", "dry run", "create",
                                          "new instance", "destroy", "destroy again", "shutdown"});
  const auto &create = doc["steps"][3];
  CHECK(create["status"] == "OK");
  CHECK(create["outputs"]["restore"].is_object());
  CHECK_FALSE(fs::exists(work / "m"));
}

TEST_CASE("the SDK example plugin passes") {
  TempDir tmp("check-plugin-tmp"), work("check-plugin-work");
  const fs::path marker = work / "example-marker";
  auto r = bladed(
      exercise(kBuiltPlugins / "example.so", "example", "marker", {"path=" + marker.string()}),
      tmp.path());
  check_all_passed(r);
  CHECK(has_line(r.out, "PASS validate flags: content="));  // its default applied
  CHECK_FALSE(fs::exists(marker));
  CHECK(empty_dir(tmp.path()));
}

TEST_CASE("the os plugin passes file add, and the file is gone afterwards") {
  TempDir tmp("check-plugin-tmp"), work("check-plugin-work");
  const fs::path added = work / "added.txt";
  auto r = bladed(exercise(kBuiltPlugins / "os.so", "file", "add",
                           {"filepath=" + added.string(), "content=exercised"}),
                  tmp.path());
  check_all_passed(r);
  CHECK_FALSE(fs::exists(added));
  CHECK(empty_dir(work.path()));
  CHECK(empty_dir(tmp.path()));
}

TEST_CASE("the disk plugin passes a 1 MB fill of a temporary dir, which is empty afterwards") {
  TempDir tmp("check-plugin-tmp"), work("check-plugin-work");
  auto r = bladed(exercise(kBuiltPlugins / "disk.so", "disk", "fill",
                           {"path=" + work.path().string(), "size=1"}),
                  tmp.path());
  check_all_passed(r);
  CHECK(empty_dir(work.path()));  // blade-fill-<uid>.dat removed
  CHECK(empty_dir(tmp.path()));
}

TEST_CASE("protected paths are bladed's for the given state dir: disk refuses to fill it") {
  TempDir tmp("check-plugin-tmp"), state("check-plugin-state");
  auto args = exercise(kBuiltPlugins / "disk.so", "disk", "fill",
                       {"path=" + state.path().string(), "size=1"});
  args.insert(args.end(), {"--state-dir", state.path().string()});
  auto r = bladed(args, tmp.path());
  INFO(r.out);
  CHECK(r.code == 1);
  // The plugin sees the state dir among host_info.protected_paths.
  const std::string refused =
      "status INVALID_ARGUMENT: path: refused: " + state.path().string() + " is bladed's own";
  CHECK(has_line(r.out, "FAIL dry run: " + refused));
  CHECK(has_line(r.out, "FAIL create: " + refused));
  CHECK(has_line(r.out, "PASS destroy again: status OK"));
  CHECK(has_line(r.out, "FAIL exercise: "));
  // A given state dir is kept, with the plugin's own dir inside.
  CHECK(fs::is_directory(state / "plugins" / "disk"));
}

TEST_CASE("a non-idempotent destroy is reported: FAIL destroy again, exit 1") {
  TempDir tmp("check-plugin-tmp"), state("check-plugin-state");
  auto args = exercise(kTestPlugins / "broken_destroy.so", "brokendestroy", "mark");
  args.insert(args.end(), {"--state-dir", state.path().string()});
  auto r = bladed(args, tmp.path());
  INFO(r.out);
  CHECK(r.code == 1);
  CHECK(has_line(r.out, "PASS create: status OK"));
  CHECK(has_line(r.out, "PASS destroy: status OK"));
  CHECK(has_line(r.out, "FAIL destroy again: status NOT_FOUND: mark file not found"));
  CHECK(has_line(r.out, "PASS shutdown: "));
  CHECK(has_line(r.out, "FAIL exercise: 7 passed, 1 failed, 0 skipped"));
  // The first destroy did undo the fault (the mark file in its state dir).
  const fs::path own = state / "plugins" / "broken-destroy";
  REQUIRE(fs::is_directory(own));
  CHECK(empty_dir(own));
}

TEST_CASE("a create whose RESULT is not JSON fails, and destroy still runs") {
  TempDir tmp("check-plugin-tmp");
  auto r = bladed(exercise(kTestPlugins / "broken_result.so", "brokenresult", "mark"), tmp.path());
  INFO(r.out);
  CHECK(r.code == 1);
  CHECK(has_line(r.out,
                 "FAIL create: status INTERNAL: plugin 'broken-result' returned invalid "
                 "JSON for RESULT"));
  CHECK(has_line(r.out, "PASS destroy: status OK"));
  CHECK(has_line(r.out, "PASS destroy again: status OK"));
  CHECK(empty_dir(tmp.path()));
}

TEST_CASE("a create that hangs past --call-timeout is reported, not waited for") {
  TempDir tmp("check-plugin-tmp");
  auto args = exercise(kTestPlugins / "hang_create.so", "hangcreate", "mark");
  args.insert(args.end(), {"--call-timeout", "1s"});
  auto r = bladed(args, tmp.path());
  INFO(r.out);
  CHECK(r.code == 1);
  CHECK(has_line(r.out, "FAIL create: create did not return within 1s"));
  CHECK(has_line(r.out, "FAIL exercise: "));
  CHECK(r.took < std::chrono::seconds(20));
}

TEST_CASE("a bad flag is a failed step naming the flag, and no call is made") {
  TempDir tmp("check-plugin-tmp"), work("check-plugin-work");
  auto r = bladed(exercise(kTestPlugins / "c_marker.so", "cmarker", "touch",
                           {"path=" + (work / "m").string(), "hang-ms=soon"}),
                  tmp.path());
  INFO(r.out);
  CHECK(r.code == 1);
  CHECK(has_line(r.out, "FAIL validate flags: flags.hang-ms: "));
  CHECK(has_line(r.out, "SKIP create: "));
  CHECK(has_line(r.out, "PASS shutdown: "));
  CHECK_FALSE(fs::exists(work / "m"));

  auto missing = bladed(exercise(kTestPlugins / "c_marker.so", "cmarker", "touch"), tmp.path());
  CHECK(missing.code == 1);
  CHECK(has_line(missing.out, "FAIL validate flags: flags.path: "));
}

TEST_CASE("usage errors name the field and exit 2") {
  TempDir tmp("check-plugin-tmp");
  const std::string marker = (kTestPlugins / "c_marker.so").string();

  auto no_target = bladed({"check-plugin", "--exercise", marker, "--action", "touch"}, tmp.path());
  CHECK(no_target.code == 2);
  CHECK(no_target.out.find("target: --target is required") != std::string::npos);

  auto no_action =
      bladed({"check-plugin", "--exercise", marker, "--target", "cmarker"}, tmp.path());
  CHECK(no_action.code == 2);
  CHECK(no_action.out.find("action: --action is required") != std::string::npos);

  auto unknown = bladed(exercise(marker, "cmarker", "nope"), tmp.path());
  INFO(unknown.out);
  CHECK(unknown.code == 2);
  CHECK(unknown.out.find("action: 'nope' is not an action of target 'cmarker'") !=
        std::string::npos);

  auto bad_target = bladed(exercise(marker, "nothing", "touch"), tmp.path());
  CHECK(bad_target.code == 2);
  CHECK(bad_target.out.find("target: plugin 'c-marker' serves no target 'nothing'") !=
        std::string::npos);

  auto bad_flag = bladed({"check-plugin", "--exercise", marker, "--target", "cmarker", "--action",
                          "touch", "--flag", "path"},
                         tmp.path());
  CHECK(bad_flag.code == 2);
  CHECK(bad_flag.out.find("flag: expected NAME=VALUE, got 'path'") != std::string::npos);

  auto bad_timeout = bladed({"check-plugin", "--exercise", marker, "--target", "cmarker",
                             "--action", "touch", "--call-timeout", "soon"},
                            tmp.path());
  CHECK(bad_timeout.code == 2);
  CHECK(bad_timeout.out.find("call-timeout: 'soon'") != std::string::npos);

  auto unknown_option = bladed({"check-plugin", "--exercise", marker, "--bogus"}, tmp.path());
  CHECK(unknown_option.code == 2);
  CHECK(unknown_option.out.find("unknown option '--bogus'") != std::string::npos);
  auto help = bladed({"check-plugin", "--exercise", "--help"}, tmp.path());
  CHECK(help.code == 0);
  CHECK(help.out.find("usage: bladed check-plugin --exercise FILE.so") == 0);
  // Nothing was loaded for any of these, so no state dir was left either.
  CHECK(empty_dir(tmp.path()));
}

TEST_CASE("plain check-plugin FILE.so is unchanged: the record as JSON") {
  TempDir tmp("check-plugin-tmp");
  auto r = bladed({"check-plugin", (kTestPlugins / "c_marker.so").string()}, tmp.path());
  INFO(r.out);
  CHECK(r.code == 0);
  auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["status"] == "loaded");
  CHECK(doc["name"] == "c-marker");
}

TEST_CASE("--config hands the plugin its section, validated; a bad section fails the load") {
  TempDir tmp("check-plugin-tmp"), work("check-plugin-work");
  const fs::path good = work / "good.yaml", bad = work / "bad.yaml";
  std::ofstream(good) << "plugins:\n  configurable: {max: 7}\n";
  std::ofstream(bad) << "plugins:\n  configurable: {max: 99}\n";

  auto args = exercise(kTestPlugins / "configurable.so", "configurable", "show");
  args.insert(args.end(), {"--config", good.string(), "--json"});
  auto r = bladed(args, tmp.path());
  INFO(r.out);
  REQUIRE(r.code == 0);
  auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["steps"][3]["outputs"]["result"]["config"]["max"] == 7);

  args = exercise(kTestPlugins / "configurable.so", "configurable", "show");
  args.insert(args.end(), {"--config", bad.string()});
  r = bladed(args, tmp.path());
  INFO(r.out);
  CHECK(r.code == 1);
  CHECK(has_line(r.out, "FAIL load: "));
  CHECK(r.out.find("plugins.configurable.max") != std::string::npos);

  args = exercise(kTestPlugins / "configurable.so", "configurable", "show");
  args.insert(args.end(), {"--config", (work / "absent.yaml").string()});
  r = bladed(args, tmp.path());
  CHECK(r.code == 2);
  CHECK(r.out.find("config: ") != std::string::npos);
}
