// One crash trial: a fresh target and a fresh bladed (os, disk and network plugins
// loaded), a create (and maybe a destroy) during which the daemon is
// SIGKILLed, a restart on the same state, and the host compared with its
// snapshot from before the create. Used by the failpoint matrix and the
// random-moment soak alike.
#pragma once

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "../support/eventually.hpp"
#include "bladed_process.hpp"
#include "experiment_calls.hpp"
#include "fault_rows.hpp"

namespace blade::test::crash {

using namespace std::chrono_literals;

// Puts every temp dir of the trials (bladed's state and database, the
// targets) on a tmpfs mounted for the run: fsync costs nothing there, which
// makes a trial several times faster on a busy disk. A SIGKILL loses no
// write the daemon made (the page cache survives its process), so what the
// trials prove about process crashes is unchanged; power loss is another
// matter, not tested here.
class TrialScratch {
 public:
  TrialScratch() : fs_("tmpfs", 1024) {
    if (const char *old = std::getenv("TMPDIR")) old_ = old;
    ::setenv("TMPDIR", fs_.path().c_str(), 1);
  }
  ~TrialScratch() {
    if (old_.empty())
      ::unsetenv("TMPDIR");
    else
      ::setenv("TMPDIR", old_.c_str(), 1);
  }
  TrialScratch(const TrialScratch &) = delete;
  TrialScratch &operator=(const TrialScratch &) = delete;

 private:
  disk::ScratchFs fs_;
  std::string old_;
};

inline BladedOptions crash_options(std::vector<std::string> env) {
  BladedOptions o = only_plugin(crash_plugins()[0]);
  o.plugin_files = crash_plugins();
  o.env = std::move(env);
  return o;
}

// A failpoint window a row's create or destroy passes through: the n-th
// hit of `name` in the daemon's life (BLADE_FAILPOINTS "name=kill@n").
struct Window {
  std::string name;
  int hit = 1;
  bool in_destroy = false;  // reached only once destroy is asked for
  std::string label() const {
    return name + (hit > 1 ? "@" + std::to_string(hit) : "") + (in_destroy ? " (destroy)" : "");
  }
};

inline std::vector<std::string> log_lines(const fs::path &file) {
  std::vector<std::string> out;
  std::ifstream in(file);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

struct Discovery {
  std::vector<Window> windows;
  // What a create and destroy WITHOUT a crash left: should be nothing, or
  // every trial of the row shows it too.
  std::string left;
};

// Runs the row's create and destroy once under BLADE_FAILPOINTS_LOG and
// lists every failpoint hit between the create request and the destroy's
// answer, in order: core.* and the plugin's, whatever names they have now.
inline Discovery discover_windows(const FaultRow &row) {
  Fixture f = row.setup();
  const auto inside = f.enter ? f.enter() : nullptr;
  const HostState before = f.snapshot();
  TempDir logs("crash-discovery");
  const fs::path log = logs / "failpoints.log";
  BladedProcess d(crash_options({"BLADE_FAILPOINTS_LOG=" + log.string()}));
  auto c = d.client();
  const std::size_t at_start = log_lines(log).size();
  const Answer a = create(c, f.request());
  REQUIRE_MESSAGE(a.status == 201, row.name << ": " << a.body.dump());
  const std::size_t after_create = log_lines(log).size();
  if (f.snapshot_sees_fault) {
    HostState during;
    CHECK_MESSAGE(eventually([&] { return (during = f.snapshot()) != before; }, 2s),
                  row.name << ": the snapshot does not see the fault while it is active");
  }
  const Answer gone = destroy(c, a.uid());
  REQUIRE_MESSAGE(gone.status == 200, row.name << ": " << gone.body.dump());
  const auto lines = log_lines(log);
  HostState after;
  eventually([&] { return (after = f.snapshot()) == before; }, 2s);

  Discovery out;
  out.left = difference(before, after);
  std::map<std::string, int> hits;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const int n = ++hits[lines[i]];
    // Hits at start-up (none today) belong to no row: a kill there would
    // only stop the daemon from starting.
    if (i < at_start) continue;
    out.windows.push_back({lines[i], n, i >= after_create});
  }
  return out;
}

// An experiment's status once it is terminal (destroyed or failed), else the
// last seen, "" if it is not there.
inline std::string final_status(httplib::Client &c, const std::string &uid) {
  std::string status;
  eventually(
      [&] {
        const auto x = experiment(c, uid);
        status = x.is_object() ? x.value("status", "") : "";
        return status == "destroyed" || status == "failed";
      },
      10s);
  return status;
}

// Every experiment the daemon holds (the state dir is the trial's own).
inline std::vector<nlohmann::json> all_experiments(httplib::Client &c) {
  auto r = c.Get("/v1/experiments", auth());
  if (!r || r->status != 200) return {};
  const auto body = nlohmann::json::parse(r->body, nullptr, false);
  if (!body.is_object() || !body["data"].contains("items")) return {};
  return body["data"]["items"].get<std::vector<nlohmann::json>>();
}

struct TrialResult {
  bool reached = true;   // the daemon died where it was aimed
  std::string uid;       // "" when the kill came before the row existed
  std::string status;    // after the restart
  std::string left;      // difference(before, after): what the crash left
  std::string problem;   // why the trial failed, "" if it passed

  bool ok() const { return problem.empty(); }
};

// After the daemon died: restart it clean on the same state, wait for the
// experiment (if any) to settle, and compare the host. `answered` says the
// create had answered 201 before the crash, so the fault ran: then only
// `destroyed` is right. A crash inside create may also end `failed` (the
// create did not take), but in either case only with nothing left.
inline void judge_after_restart(BladedProcess &d, const Fixture &f, const HostState &before,
                                bool answered, TrialResult &r) {
  d.set_env({});
  d.restart();  // returns once its recovery at start has run
  auto c = d.client();
  if (r.uid.empty()) {
    const auto all = all_experiments(c);
    if (all.size() > 1) r.problem = "more than one experiment after one create";
    if (!all.empty()) r.uid = all.front().value("uid", "");
  }
  if (!r.uid.empty()) r.status = final_status(c, r.uid);
  HostState after;
  eventually([&] { return (after = f.snapshot()) == before; }, 2s);
  r.left = difference(before, after);
  if (!r.problem.empty()) return;
  if (!r.left.empty()) {
    r.problem = r.status == "destroyed" || r.status == "failed"
                    ? "left on the host while the experiment reads " + r.status
                    : "left on the host (experiment " + (r.status.empty() ? "absent" : r.status) +
                          ")";
  } else if (!r.uid.empty() && r.status != "destroyed" && !(r.status == "failed" && !answered)) {
    r.problem = "experiment ends " + (r.status.empty() ? "absent" : r.status) +
                (answered ? ", not destroyed" : ", neither destroyed nor failed");
  }
}

// The matrix's trial: the daemon armed to SIGKILL itself at `w`.
inline TrialResult kill_at(const FaultRow &row, const Window &w) {
  Fixture f = row.setup();
  const auto inside = f.enter ? f.enter() : nullptr;
  const HostState before = f.snapshot();
  BladedProcess d(
      crash_options({"BLADE_FAILPOINTS=" + w.name + "=kill@" + std::to_string(w.hit)}));
  TrialResult r;
  bool answered = false;
  {
    auto c = d.client();
    if (w.in_destroy) {
      const Answer a = create(c, f.request());
      if (a.status != 201) {
        r.problem = "create answered " + std::to_string(a.status) + ": " + a.body.dump();
        return r;
      }
      r.uid = a.uid();
      answered = true;
      c.Delete(("/v1/experiments/" + r.uid).c_str(), auth());
    } else {
      post_json(c, "/v1/experiments", f.request());
    }
  }
  if (d.process->exit_code(10s) != -SIGKILL) {
    r.reached = false;
    r.problem = "the daemon did not die at " + w.label();
    return r;
  }
  judge_after_restart(d, f, before, answered, r);
  return r;
}

// Where a soak trial's kill landed, as far as the client and the store
// tell: before the row existed, inside the create, after its answer; inside
// a destroy or after its answer.
enum class Landed { BeforeRow, MidCreate, AfterAnswer, MidDestroy, AfterDestroy };

struct SoakTrial {
  Landed landed = Landed::BeforeRow;
  TrialResult result;
};

// The soak's trial: SIGKILL `delay` after the create request (or, with
// `in_destroy`, the destroy request of a running experiment) is sent.
inline SoakTrial kill_after(const FaultRow &row, std::chrono::microseconds delay,
                            bool in_destroy) {
  Fixture f = row.setup();
  const auto inside = f.enter ? f.enter() : nullptr;
  const HostState before = f.snapshot();
  BladedProcess d(crash_options({}));
  SoakTrial t;
  auto c = d.client();
  bool answered = false;
  if (in_destroy) {
    const Answer a = create(c, f.request());
    REQUIRE_MESSAGE(a.status == 201, row.name << ": " << a.body.dump());
    t.result.uid = a.uid();
    answered = true;
  }
  std::atomic<bool> sent{false};
  int reply_status = 0;  // 0: no answer (the daemon died first)
  std::string reply_body;
  const nlohmann::json body = f.request();
  std::thread client([&] {
    auto c2 = d.client();
    sent = true;
    auto reply = in_destroy ? c2.Delete(("/v1/experiments/" + t.result.uid).c_str(), auth())
                            : post_json(c2, "/v1/experiments", body);
    if (reply) {
      reply_status = reply->status;
      reply_body = reply->body;
    }
  });
  while (!sent)
    std::this_thread::yield();
  std::this_thread::sleep_for(delay);
  d.process->signal(SIGKILL);
  client.join();
  REQUIRE(d.process->exit_code(10s) == -SIGKILL);
  if (in_destroy) {
    t.landed = reply_status == 200 ? Landed::AfterDestroy : Landed::MidDestroy;
  } else if (reply_status == 201) {
    t.landed = Landed::AfterAnswer;
    answered = true;
    t.result.uid = nlohmann::json::parse(reply_body)["data"].value("uid", "");
  }
  judge_after_restart(d, f, before, answered, t.result);
  if (!in_destroy && !answered)
    t.landed = t.result.uid.empty() ? Landed::BeforeRow : Landed::MidCreate;
  return t;
}

}  // namespace blade::test::crash
