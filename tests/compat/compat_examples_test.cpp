// ChaosBlade's own usage examples (tests/compat/exec_os_examples.md) run
// through the real `blade` CLI against a real bladed with the os and disk
// plugins: each row creates, shows its effect on the host, is destroyed
// through the CLI, and leaves nothing. One line per row, `PASS|FAIL <example>
// -- <why>`, then `compat: N/M`; the test fails below M.
#include <unistd.h>

#include <iostream>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "command_words.hpp"
#include "example_row.hpp"

namespace blade::test::compat {
namespace {

// blade runs in `dir` (a relative `--file test.sh` is the CLI's to resolve)
// while this lives.
class WorkingDir {
 public:
  explicit WorkingDir(const fs::path &dir) {
    if (dir.empty()) return;
    before_ = fs::current_path();
    fs::current_path(dir);
  }
  ~WorkingDir() {
    if (!before_.empty()) fs::current_path(before_);
  }
  WorkingDir(const WorkingDir &) = delete;
  WorkingDir &operator=(const WorkingDir &) = delete;

 private:
  fs::path before_;
};

std::string first_line(const std::string &text) {
  const auto lines = lines_of(text);
  return lines.empty() ? "" : lines.front();
}

// One printed line per row: a newline in measured text is shown as \n.
std::string one_line(std::string text) {
  for (std::size_t at = 0; (at = text.find('\n', at)) != std::string::npos; at += 2)
    text.replace(at, 1, "\\n");
  return text;
}

bool is_uid(const std::string &s) {
  return s.size() == 16 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// The experiment's status as `blade status <uid> -o json` shows it.
std::string status_of(const Env &env, const std::string &uid) {
  const auto r = env.blade.run({"status", uid, "-o", "json"});
  try {
    return nlohmann::json::parse(r.out).value("status", "?");
  } catch (const std::exception &) {
    return "unreadable (" + first_line(r.err) + ")";
  }
}

Outcome run_row(Env &env, const Row &row) {
  Fixture fx;
  try {
    fx = row.setup(env);
  } catch (const std::exception &e) {
    return failed(std::string("cannot set the row up: ") + e.what());
  }
  if (!fx.cannot_run.empty()) return failed("cannot run here: " + fx.cannot_run);
  const std::string ran =
      fx.substituted.empty() ? "" : " [ran: " + shown(fx.words) + "; " + fx.substituted + "]";

  BladeRun created;
  {
    WorkingDir in(fx.cwd);
    created = env.blade.run(fx.words);
  }
  const std::string uid = first_line(created.out);
  if (created.code != 0 || !is_uid(uid))
    return failed("create: exit " + std::to_string(created.code) + ": " + first_line(created.err) +
                  ran);

  Outcome effect;
  try {
    effect = fx.effect(uid);
  } catch (const std::exception &e) {
    effect = failed(std::string("effect check threw: ") + e.what());
  }
  // Destroyed whatever the effect was: a row never leaves its fault behind.
  const auto destroyed = env.blade.run({"destroy", uid});
  Outcome clean;
  if (destroyed.code != 0) {
    clean = failed("destroy: exit " + std::to_string(destroyed.code) + ": " +
                   first_line(destroyed.err));
  } else {
    try {
      clean = fx.clean(uid);
    } catch (const std::exception &e) {
      clean = failed(std::string("clean check threw: ") + e.what());
    }
  }
  const std::string status = status_of(env, uid);
  const bool ok = effect.ok && clean.ok && status == "destroyed";
  return {ok, "effect: " + effect.what + "; after destroy: " + clean.what + "; status " + status +
                  ran};
}

// A safety net after the table: anything a failed row left active is destroyed.
void destroy_leftovers(Env &env) {
  const auto listed = env.blade.run({"status", "-o", "json", "--limit", "1000"});
  try {
    for (const auto &e : nlohmann::json::parse(listed.out).value("items", nlohmann::json::array())) {
      const std::string s = e.value("status", "");
      if (s != "destroyed" && s != "failed") env.blade.run({"destroy", e.value("uid", "")});
    }
  } catch (const std::exception &) {
  }
}

}  // namespace

TEST_CASE("ChaosBlade's usage examples work through blade against a real bladed") {
  BladedOptions options;
  options.plugins = {};
  options.plugin_files = {fs::path(BLADE_BUILT_PLUGIN_DIR) / "os.so",
                          fs::path(BLADE_BUILT_PLUGIN_DIR) / "disk.so"};
  BladedProcess daemon(options);
  BladeRunner blade({"BLADE_ENDPOINT=" + daemon.url(), "BLADE_API_TOKEN=" + kToken});
  Env env{daemon, blade};

  std::vector<Row> rows;
  for (auto family : {cpu_mem_rows, process_rows, file_script_rows, disk_rows, system_rows})
    for (auto &r : family())
      rows.push_back(std::move(r));

  std::size_t passed = 0;
  for (const auto &row : rows) {
    const Outcome o = run_row(env, row);
    passed += o.ok;
    std::cout << (o.ok ? "PASS " : "FAIL ") << row.example << " -- " << one_line(o.what) << std::endl;
  }
  destroy_leftovers(env);
  std::cout << "compat: " << passed << "/" << rows.size() << std::endl;
  CHECK_MESSAGE(passed == rows.size(), "compat: " << passed << "/" << rows.size());
}

}  // namespace blade::test::compat
