// ChaosBlade's own usage examples (tests/compat/exec_os_examples.md) run
// through the real `blade` CLI against a real bladed with the os and disk
// plugins: each row creates, shows its effect on the host, is destroyed
// through the CLI, and leaves nothing. One line per row, `PASS|FAIL <example>
// -- <why>`, then `compat: N/M`; the test fails below M. The network rows run
// against a bladed of the network plugin in a network namespace of the
// test's own, this thread inside it meanwhile (network_world.hpp).
//
// Rows whose fault would disturb the test machine itself (time travel moves
// the wall clock every process shares) or that need what it lacks (systemd
// as PID 1, sch_netem) run inside user-mode Linux guests
// (tests/support/uml_vm.hpp): the host's case first boots a plain guest, a
// systemd guest and a guest with sch_netem side by side, each re-runs this
// binary with the "guest:" case for its rows, and the rows' results come back
// in the guest's output and count into the host's `compat: N/M`.
#include <unistd.h>

#include <algorithm>
#include <future>
#include <iostream>
#include <map>
#include <sstream>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "../support/uml_vm.hpp"
#include "command_words.hpp"
#include "example_row.hpp"
#include "network_world.hpp"

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

std::vector<Row> all_rows() {
  std::vector<Row> rows;
  for (auto family :
       {cpu_mem_rows, process_rows, file_script_rows, disk_rows, system_rows, network_rows})
    for (auto &r : family())
      rows.push_back(std::move(r));
  return rows;
}

bool has_rows(const std::vector<Row> &rows, Where where) {
  return std::any_of(rows.begin(), rows.end(), [&](const Row &r) { return r.where == where; });
}

// A bladed with the os and disk plugins, and the CLI talking to it.
struct Daemon {
  BladedProcess process{[] {
    BladedOptions options;
    options.plugins = {};
    options.plugin_files = {fs::path(BLADE_BUILT_PLUGIN_DIR) / "os.so",
                            fs::path(BLADE_BUILT_PLUGIN_DIR) / "disk.so"};
    return options;
  }()};
  BladeRunner blade{{"BLADE_ENDPOINT=" + process.url(), "BLADE_API_TOKEN=" + kToken}};
  Env env{process, blade};
};

// A guest's result for one row comes back as one line of its output.
constexpr const char *kGuestMark = "compat-guest-row ";

// The guest's half: runs the rows meant for `where` (the host's case booted
// this guest for them) against `env`'s daemon and prints each as
// `compat-guest-row <index> PASS|FAIL <why>`, <index> in the whole table.
void run_guest_rows(Env &env, Where where) {
  const auto rows = all_rows();
  std::size_t ran = 0, passed = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].where != where) continue;
    const Outcome o = run_row(env, rows[i]);
    ++ran;
    passed += o.ok;
    std::cout << kGuestMark << i << (o.ok ? " PASS " : " FAIL ") << one_line(o.what) << std::endl;
  }
  destroy_leftovers(env);
  CHECK(ran > 0);
  CHECK(passed == ran);
}

// The guest that runs the rows meant for `where`, with the case that runs them.
struct Guest {
  Where where;
  std::string name;         // for the row's line
  std::string case_filter;  // the "guest:" case below
  UmlOptions options;
};

std::vector<Guest> guests() {
  UmlOptions clock;
  // The guest's clock is its own: the time travel rows may move it.
  clock.env = {"BLADE_TEST_OWN_CLOCK=1"};
  UmlOptions systemd;
  systemd.systemd = true;
  UmlOptions netem;
  // The host's kernel lacks sch_netem and sch_prio; veth is a module in UML.
  netem.modules = {"veth", "sch_netem", "sch_prio", "sch_tbf", "cls_u32"};
  return {{Where::clock_guest, "a plain user-mode Linux guest",
           "guest: compat rows that move the wall clock", clock},
          {Where::systemd_guest, "a user-mode Linux guest with systemd as PID 1",
           "guest: compat rows that need systemd as PID 1", systemd},
          {Where::netem_guest, "a user-mode Linux guest with sch_netem",
           "guest: compat rows that need sch_netem", netem}};
}

// The row's outcome as the guest printed it; when the guest printed none (no
// UML here, a boot that failed, a crash), a failure saying why.
Outcome guest_outcome(const UmlResult &r, std::size_t index, const std::string &guest) {
  const std::string mark = kGuestMark + std::to_string(index) + " ";
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(mark, 0) != 0) continue;
    const std::string rest = line.substr(mark.size());
    const bool ok = rest.rfind("PASS ", 0) == 0;
    return {ok, rest.substr(5) + " [in " + guest + ", " + std::to_string(int(r.seconds)) + " s]"};
  }
  std::string why = r.failure.empty() ? "the guest exited " + std::to_string(r.exit_code) +
                                            " without a result for this row"
                                      : r.failure;
  const std::string &shown_out = r.output.empty() ? r.console : r.output;
  const std::string tail =
      shown_out.size() > 400 ? shown_out.substr(shown_out.size() - 400) : shown_out;
  return failed("cannot run in " + guest + ": " + why + "; its last output: " + one_line(tail));
}

}  // namespace

TEST_CASE("ChaosBlade's usage examples work through blade against a real bladed") {
  const auto rows = all_rows();
  Daemon d;

  // The guests boot side by side (about 6 s and 20 s) before the host's
  // rows, not during them: a booting guest takes the machine's cores, and the
  // host's rows measure its busy share, memory and how fast fixtures start
  // (a process row's fixture missed its 5 s start while they booted).
  std::map<Where, std::future<UmlResult>> running;
  for (const auto &g : guests())
    if (has_rows(rows, g.where))
      running[g.where] =
          std::async(std::launch::async, [g] { return run_guest_cases(g.case_filter, g.options); });
  std::map<Where, UmlResult> guest_results;
  for (auto &[where, result] : running)
    guest_results[where] = result.get();

  std::map<std::size_t, Outcome> outcomes;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row &row = rows[i];
    if (row.where != Where::host) continue;
    const Outcome o = run_row(d.env, row);
    outcomes[i] = o;
    std::cout << (o.ok ? "PASS " : "FAIL ") << row.example << " -- " << one_line(o.what) << std::endl;
  }
  destroy_leftovers(d.env);

  // The network rows: a daemon of their own in a network namespace of the
  // test's (network_world.hpp), this thread inside it meanwhile.
  {
    NetworkDaemon n;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (rows[i].where != Where::network) continue;
      const Outcome o = outcomes[i] = run_row(n.env, rows[i]);
      std::cout << (o.ok ? "PASS " : "FAIL ") << rows[i].example << " -- " << one_line(o.what)
                << std::endl;
    }
    destroy_leftovers(n.env);
  }

  for (const auto &g : guests()) {
    if (!has_rows(rows, g.where)) continue;
    const UmlResult &r = guest_results.at(g.where);
    MESSAGE(g.name << ": " << r.seconds << " s; guest " << r.summary());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (rows[i].where != g.where) continue;
      const Outcome o = outcomes[i] = guest_outcome(r, i, g.name);
      std::cout << (o.ok ? "PASS " : "FAIL ") << rows[i].example << " -- " << one_line(o.what)
                << std::endl;
    }
  }

  std::size_t passed = 0;
  for (const auto &[i, o] : outcomes)
    passed += o.ok;
  std::cout << "compat: " << passed << "/" << rows.size() << std::endl;
  CHECK_MESSAGE(outcomes.size() == rows.size(), "rows without a result");
  CHECK_MESSAGE(passed == rows.size(), "compat: " << passed << "/" << rows.size());
}

TEST_CASE("guest: compat rows that move the wall clock" * doctest::skip()) {
  Daemon d;
  run_guest_rows(d.env, Where::clock_guest);
}

TEST_CASE("guest: compat rows that need systemd as PID 1" * doctest::skip()) {
  Daemon d;
  run_guest_rows(d.env, Where::systemd_guest);
}

TEST_CASE("guest: compat rows that need sch_netem" * doctest::skip()) {
  NetworkDaemon n;
  run_guest_rows(n.env, Where::netem_guest);
}

}  // namespace blade::test::compat
