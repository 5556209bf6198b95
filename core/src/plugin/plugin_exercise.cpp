#include "blade/core/plugin/plugin_exercise.hpp"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "blade/core/model/error.hpp"
#include "blade/core/model/experiment.hpp"
#include "blade/core/plugin/loaded_plugin.hpp"
#include "blade/core/plugin/plugin_loader.hpp"
#include "blade/core/plugin/plugin_record.hpp"
#include "blade/core/plugin/protected_paths.hpp"
#include "blade/core/plugin/registry.hpp"
#include "blade/core/spec/ssh_channel.hpp"
#include "plugin_library.hpp"

namespace blade {
namespace {

// After the deadline the call is asked to stop (is_cancelled turns true);
// a plugin that polls gets this long to return before it counts as hung.
constexpr std::chrono::seconds kCancelGrace{1};

// bladed's state dir for the run: a private temporary one, removed at the
// end, unless the caller named one (kept) or a call hung in it (kept: the
// plugin may still be writing there).
class StateDir {
 public:
  explicit StateDir(const std::optional<std::filesystem::path> &given) {
    if (given) {
      path_ = *given;
      std::filesystem::create_directories(path_);
      return;
    }
    std::string tmpl = (std::filesystem::temp_directory_path() / "bladed-exercise-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a temporary state dir");
    path_ = tmpl;
    owned_ = true;
  }
  ~StateDir() {
    if (!owned_) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  StateDir(const StateDir &) = delete;
  StateDir &operator=(const StateDir &) = delete;

  const std::filesystem::path &path() const { return path_; }
  void keep() { owned_ = false; }

 private:
  std::filesystem::path path_;
  bool owned_ = false;
};

// Runs `work` on its own thread and waits for it up to `limit`, then sets
// `cancel` and waits kCancelGrace more. Its value (or the exception it
// threw, rethrown here), or nullopt when it is still running: the thread is
// then detached, and everything it uses must be owned by `work` itself.
template <class F>
auto run_bounded(std::chrono::milliseconds limit, const std::shared_ptr<std::atomic<bool>> &cancel,
                 F work) -> std::optional<decltype(work())> {
  using R = decltype(work());
  std::promise<R> promise;
  auto future = promise.get_future();
  std::thread worker([promise = std::move(promise), work = std::move(work)]() mutable {
    try {
      promise.set_value(work());
    } catch (...) {
      promise.set_exception(std::current_exception());
    }
  });
  if (future.wait_for(limit) != std::future_status::ready) {
    cancel->store(true);
    if (future.wait_for(kCancelGrace) != std::future_status::ready) {
      worker.detach();
      return std::nullopt;
    }
  }
  worker.join();
  return future.get();
}

std::string seconds_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return fmt::format("{}s", d.count() / 1000);
  return fmt::format("{}ms", d.count());
}

nlohmann::json parsed(const std::string &text) {
  return text.empty() ? nlohmann::json(nullptr) : nlohmann::json::parse(text, nullptr, false);
}

std::string status_text(const CallOutcome &o) {
  std::string text = fmt::format("status {}", plugin_status_name(o.status));
  if (!o.ok() && !o.message.empty()) text += ": " + o.message;
  return text;
}

// Every write-ahead record a create saved, in order (host API save_restore).
struct SavedAhead {
  std::mutex mutex;
  std::vector<std::string> records;
};

enum class CallKind { DryRun, Create, Destroy };

// One plugin call under the exercise's deadline.
struct BoundedOutcome {
  enum class How { Answered, Threw, Hung } how = How::Answered;
  CallOutcome outcome;
  std::string thrown;  // what crossed the boundary, for How::Threw
};

BoundedOutcome call_bounded(const std::shared_ptr<LoadedPlugin> &plugin, CallKind kind,
                            const PluginRequest &request, std::chrono::milliseconds limit,
                            const std::shared_ptr<SavedAhead> &saved = nullptr) {
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  CallOptions options;
  options.deadline = std::chrono::steady_clock::now() + limit;
  options.cancel = cancel.get();  // kept alive by the worker's own copy of `cancel`
  if (saved) {
    options.save_restore = [saved](const std::string &json) {
      std::lock_guard lock(saved->mutex);
      saved->records.push_back(json);
    };
  }
  BoundedOutcome out;
  try {
    auto answer = run_bounded(limit, cancel, [plugin, kind, request, options, cancel] {
      switch (kind) {
        case CallKind::DryRun:
          return plugin->dry_run(request, options);
        case CallKind::Create:
          return plugin->create(request, options);
        case CallKind::Destroy:
          break;
      }
      return plugin->destroy(request, options);
    });
    if (!answer) {
      out.how = BoundedOutcome::How::Hung;
      return out;
    }
    out.outcome = std::move(*answer);
  } catch (const std::exception &e) {
    out.how = BoundedOutcome::How::Threw;
    out.thrown = e.what();
  } catch (...) {
    out.how = BoundedOutcome::How::Threw;
    out.thrown = "an exception that is not a std::exception";
  }
  return out;
}

// Target and action as bladed resolves a request: through a registry
// holding the plugin, so scope, aliases and canonical names behave alike.
struct Route {
  TargetSpec target;
  ActionSpec action;
};

Route resolve_route(const std::shared_ptr<LoadedPlugin> &plugin, const ExerciseOptions &o) {
  Registry registry;
  registry.add(plugin);
  if (auto r = registry.resolve(o.scope, o.target, o.action)) return {*r->target, *r->action};
  // Say which of the three does not match.
  std::vector<std::string> targets;
  for (const TargetSpec &t : plugin->spec().items) {
    targets.push_back(t.target);
    if (t.target != o.target) continue;
    std::vector<std::string> actions;
    bool known = false;
    for (const ActionSpec &a : t.actions) {
      actions.push_back(a.name);
      known = known || a.name == o.action ||
              std::find(a.aliases.begin(), a.aliases.end(), o.action) != a.aliases.end();
    }
    if (known) {
      throw ExerciseUsageError(
          "scope", fmt::format("scope: target '{}' of plugin '{}' is in scope '{}', not '{}'",
                               o.target, plugin->name(), t.scope, o.scope));
    }
    throw ExerciseUsageError(
        "action", fmt::format("action: '{}' is not an action of target '{}' (plugin '{}' has: {})",
                              o.action, o.target, plugin->name(), fmt::join(actions, ", ")));
  }
  throw ExerciseUsageError("target",
                           fmt::format("target: plugin '{}' serves no target '{}' (it has: {})",
                                       plugin->name(), o.target, fmt::join(targets, ", ")));
}

std::string validation_text(const Error &e) {
  std::vector<std::string> parts;
  for (const FieldError &f : e.details())
    parts.push_back(fmt::format("{}: {}", f.field, f.description));
  return parts.empty() ? std::string(e.what()) : fmt::format("{}", fmt::join(parts, "; "));
}

class Exercise {
 public:
  Exercise(const ExerciseOptions &options, const std::function<void(const ExerciseStep &)> &on_step)
      : o_(options), on_step_(on_step), state_(options.state_dir) {
    report_.file = o_.plugin_file;
    report_.scope = o_.scope;
    report_.target = o_.target;
    report_.action = o_.action;
    std::vector<std::filesystem::path> plugin_dirs{
        std::filesystem::absolute(o_.plugin_file).parent_path()};
    plugin_dirs.insert(plugin_dirs.end(), o_.extra_plugin_dirs.begin(), o_.extra_plugin_dirs.end());
    settings_ = HostSettings(o_.host_version, state_.path() / "plugins");
    settings_.plugin_configs = o_.plugin_configs;
    settings_.protected_paths =
        daemon_protected_paths(state_.path() / "blade.db", state_.path(), plugin_dirs, {});
  }

  ExerciseReport run() {
    if (!load()) return finish();
    Route route = resolve_route(plugin_, o_);  // throws for a request bladed would refuse
    report_.action = route.action.name;
    if (!validate(route)) {
      skip_cycle("not called: the flags are invalid");
    } else if (dry_run() && create() && new_instance()) {
      destroy("destroy", "");
      if (!report_.hung) destroy("destroy again", " (idempotent)");
    }
    if (!report_.hung) shutdown();
    return finish();
  }

 private:
  void add(ExerciseStep step) {
    report_.steps.push_back(std::move(step));
    if (on_step_) on_step_(report_.steps.back());
  }
  void add(std::string name, StepVerdict verdict, std::string detail) {
    ExerciseStep step;
    step.name = std::move(name);
    step.verdict = verdict;
    step.detail = std::move(detail);
    add(std::move(step));
  }
  void skip_cycle(const std::string &why) {
    for (const char *name : {"dry run", "create", "new instance", "destroy", "destroy again"})
      add(name, StepVerdict::Skip, why);
  }
  // A call that did not return: everything it may touch stays as it is.
  void hung(ExerciseStep step, std::string_view what) {
    report_.hung = true;
    state_.keep();
    step.verdict = StepVerdict::Fail;
    step.detail = fmt::format(
        "{} did not return within {} (asked to cancel, waited {}s more); the call is still "
        "running, so the library stays loaded and the state dir {} is kept",
        what, seconds_text(o_.call_timeout), kCancelGrace.count(), state_.path().string());
    add(std::move(step));
  }
  ExerciseReport finish() {
    if (report_.hung) {
      // The worker still runs plugin code; this reference keeps the instance
      // and its library mapped until the process ends.
      (void)new std::shared_ptr<LoadedPlugin>(plugin_);
    }
    return std::move(report_);
  }

  bool load() {
    ExerciseStep step;
    step.name = "load";
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    try {
      auto loaded = run_bounded(o_.call_timeout, cancel, [file = o_.plugin_file, s = settings_] {
        return load_plugin(file, s);
      });
      if (!loaded) {
        hung(std::move(step), "init");
        return false;
      }
      plugin_ = std::move(*loaded);
    } catch (const std::exception &e) {  // PluginRefused, with the loader's reason
      step.verdict = StepVerdict::Fail;
      step.detail = fmt::format("refused: {}", e.what());
      add(std::move(step));
      return false;
    }
    report_.plugin = plugin_->name();
    report_.version = plugin_->version();
    step.detail =
        fmt::format("plugin '{}' {} (needs ABI {}), dry_run: {}", plugin_->name(),
                    plugin_->version(), plugin_->abi(), plugin_->has_dry_run() ? "yes" : "no");
    add(std::move(step));
    return true;
  }

  bool validate(const Route &route) {
    ExerciseStep step;
    step.name = "validate flags";
    try {
      FlagValues given = o_.flags;
      refuse_ssh_channel(route.target, route.action, given);
      report_.flags = validate_flags(route.target, route.action, given);
    } catch (const Error &e) {
      step.verdict = StepVerdict::Fail;
      step.detail = validation_text(e);
      add(std::move(step));
      return false;
    }
    std::vector<std::string> shown, defaulted;
    for (const auto &[name, value] : report_.flags) {
      shown.push_back(fmt::format("{}={}", name, value));
      if (!o_.flags.count(name)) defaulted.push_back(name);
    }
    step.detail = shown.empty() ? "no flags" : fmt::format("{}", fmt::join(shown, " "));
    if (!defaulted.empty())
      step.detail += fmt::format(" (defaults: {})", fmt::join(defaulted, ", "));
    add(std::move(step));
    return true;
  }

  PluginRequest request() const {
    PluginRequest r;
    r.uid = uid_;
    r.scope = report_.scope;
    r.target = report_.target;
    r.action = report_.action;
    r.flags = report_.flags;
    return r;
  }

  // False only when the call hung (nothing more may be called).
  bool dry_run() {
    if (!plugin_->has_dry_run()) {
      add("dry run", StepVerdict::Skip, "the plugin has no dry_run capability");
      return true;
    }
    ExerciseStep step;
    step.name = "dry run";
    PluginRequest r = request();
    r.uid = new_uid();
    auto call = call_bounded(plugin_, CallKind::DryRun, r, o_.call_timeout);
    if (!answered(step, call, "dry_run")) return !report_.hung;
    step.outputs["plan"] = parsed(call.outcome.plan_json);
    if (call.outcome.ok() && call.outcome.plan_json.empty()) {
      step.verdict = StepVerdict::Fail;
      step.detail = "status OK but no PLAN output";
    } else if (call.outcome.ok()) {
      step.detail = "status OK; PLAN is JSON";
    } else {
      step.verdict = StepVerdict::Fail;
      step.detail = status_text(call.outcome);
    }
    add(std::move(step));
    return true;
  }

  bool create() {
    ExerciseStep step;
    step.name = "create";
    auto saved = std::make_shared<SavedAhead>();
    auto call = call_bounded(plugin_, CallKind::Create, request(), o_.call_timeout, saved);
    std::vector<std::string> ahead;
    {
      std::lock_guard lock(saved->mutex);
      ahead = saved->records;
    }
    if (!answered(step, call, "create")) {
      if (report_.hung) return false;
      // It threw: destroy runs with whatever was saved ahead.
      if (!ahead.empty()) restore_ = ahead.back();
      return true;
    }
    const CallOutcome &o = call.outcome;
    // What destroy gets: the final RESTORE, else the last record saved ahead
    // (the outcome holds whichever came last), as bladed would pass it.
    if (!o.restore_json.empty()) restore_ = o.restore_json;
    step.outputs["result"] = parsed(o.result_json);
    step.outputs["restore"] = parsed(o.restore_json);
    step.outputs["saved_ahead"] = nlohmann::json::array();
    for (const auto &r : ahead)
      step.outputs["saved_ahead"].push_back(parsed(r));
    std::string saves =
        fmt::format("{} save_restore call{}", ahead.size(), ahead.size() == 1 ? "" : "s");
    if (!o.ok()) {
      step.verdict = StepVerdict::Fail;
      step.detail = fmt::format("{}; {}; destroy still runs, with {}", status_text(o), saves,
                                restore_ ? "the restore record it left" : "no restore record");
    } else if (o.restore_json.empty()) {
      step.verdict = StepVerdict::Fail;
      step.detail = fmt::format(
          "status OK but no RESTORE output (create must set it before returning); {}", saves);
    } else {
      step.detail = fmt::format("status OK; {}; RESTORE is JSON; {}",
                                o.result_json.empty() ? "no RESULT" : "RESULT is JSON", saves);
    }
    add(std::move(step));
    return true;
  }

  // A restart as bladed sees one: the instance is shut down and a fresh one
  // is initialised from the same library (kept mapped in between), so
  // destroy can rely only on the flags and the restore record.
  bool new_instance() {
    ExerciseStep step;
    step.name = "new instance";
    std::unique_ptr<PluginLibrary> library;
    try {
      library = std::make_unique<PluginLibrary>(o_.plugin_file);
    } catch (const std::exception &e) {
      return no_new_instance(std::move(step),
                             fmt::format("cannot open the library again: {}", e.what()));
    }
    PluginSpec spec = plugin_->spec();
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    try {
      if (!release_bounded()) {
        hung(std::move(step), "shutdown of the first instance");
        return false;
      }
      auto fresh = run_bounded(o_.call_timeout, cancel,
                               [lib = std::move(library), spec, s = settings_]() mutable {
                                 // The same section, with defaults, as the first instance.
                                 PluginConfig config = plugin_config(lib->descriptor(), s);
                                 return make_loaded_plugin(std::move(lib), std::move(spec), s,
                                                           std::move(config));
                               });
      if (!fresh) {
        hung(std::move(step), "init of the new instance");
        return false;
      }
      plugin_ = std::move(*fresh);
    } catch (const std::exception &e) {
      return no_new_instance(std::move(step), fmt::format("no new instance: {}", e.what()));
    }
    step.detail = "first instance shut down; a new one initialised from the same library";
    add(std::move(step));
    return true;
  }
  // Drops the instance (shutdown, then the library's unload) under the
  // deadline; false when shutdown hung (the worker keeps the instance).
  bool release_bounded() {
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    return run_bounded(o_.call_timeout, cancel,
                       [p = std::move(plugin_)]() mutable {
                         p.reset();
                         return true;
                       })
        .has_value();
  }
  bool no_new_instance(ExerciseStep step, std::string why) {
    step.verdict = StepVerdict::Fail;
    step.detail = std::move(why);
    add(std::move(step));
    const char *skipped = "no instance to call: the fault created above may still be in place";
    add("destroy", StepVerdict::Skip, skipped);
    add("destroy again", StepVerdict::Skip, skipped);
    return false;
  }

  void destroy(const char *name, const char *ok_note) {
    ExerciseStep step;
    step.name = name;
    PluginRequest r = request();
    r.restore_json = restore_;
    auto call = call_bounded(plugin_, CallKind::Destroy, r, o_.call_timeout);
    if (!answered(step, call, "destroy")) return;
    if (call.outcome.ok()) {
      step.detail = fmt::format("status OK{}", ok_note);
    } else {
      step.verdict = StepVerdict::Fail;
      step.detail = status_text(call.outcome);
      if (*ok_note) step.detail += " (destroy must be idempotent: undoing what is gone is OK)";
    }
    add(std::move(step));
  }

  void shutdown() {
    ExerciseStep step;
    step.name = "shutdown";
    if (!plugin_) {
      add("shutdown", StepVerdict::Skip, "no instance");
      return;
    }
    try {
      if (!release_bounded()) {
        hung(std::move(step), "shutdown");
        return;
      }
    } catch (const std::exception &e) {
      step.verdict = StepVerdict::Fail;
      step.detail = fmt::format("an exception crossed the plugin boundary: {}", e.what());
      add(std::move(step));
      return;
    }
    step.detail = "instance shut down, library unloaded";
    add(std::move(step));
  }

  // Reports a call that hung or threw; true when it answered.
  bool answered(ExerciseStep &step, BoundedOutcome &call, std::string_view what) {
    if (call.how == BoundedOutcome::How::Answered) {
      step.status = std::string(plugin_status_name(call.outcome.status));
      return true;
    }
    if (call.how == BoundedOutcome::How::Hung) {
      hung(std::move(step), what);
      return false;
    }
    step.verdict = StepVerdict::Fail;
    step.detail = fmt::format("an exception crossed the plugin boundary: {}", call.thrown);
    add(std::move(step));
    return false;
  }

  const ExerciseOptions &o_;
  const std::function<void(const ExerciseStep &)> &on_step_;
  StateDir state_;
  HostSettings settings_;
  ExerciseReport report_;
  std::shared_ptr<LoadedPlugin> plugin_;
  std::string uid_ = new_uid();
  std::optional<std::string> restore_;  // what destroy gets
};

}  // namespace

std::string_view to_string(StepVerdict verdict) {
  switch (verdict) {
    case StepVerdict::Pass:
      return "PASS";
    case StepVerdict::Fail:
      return "FAIL";
    case StepVerdict::Skip:
      return "SKIP";
  }
  return "FAIL";
}

bool ExerciseReport::passed() const {
  if (hung) return false;
  for (const auto &s : steps)
    if (s.verdict == StepVerdict::Fail) return false;
  return true;
}

ExerciseReport exercise_plugin(const ExerciseOptions &options,
                               const std::function<void(const ExerciseStep &)> &on_step) {
  return Exercise(options, on_step).run();
}

std::string verdict_line(const ExerciseStep &step) {
  return fmt::format("{} {}: {}", to_string(step.verdict), step.name, step.detail);
}

std::string final_verdict_line(const ExerciseReport &report) {
  int passed = 0, failed = 0, skipped = 0;
  for (const auto &s : report.steps) {
    (s.verdict == StepVerdict::Pass ? passed : s.verdict == StepVerdict::Fail ? failed : skipped)++;
  }
  std::string line = fmt::format("{} exercise: {} passed, {} failed, {} skipped",
                                 report.passed() ? "PASS" : "FAIL", passed, failed, skipped);
  if (report.hung) line += "; a call hung, exiting without unloading the plugin";
  return line;
}

nlohmann::json to_json(const ExerciseReport &report) {
  nlohmann::json steps = nlohmann::json::array();
  for (const auto &s : report.steps) {
    nlohmann::json j = {{"step", s.name}, {"verdict", to_string(s.verdict)}, {"detail", s.detail}};
    if (s.status) j["status"] = *s.status;
    if (!s.outputs.empty()) j["outputs"] = s.outputs;
    steps.push_back(std::move(j));
  }
  return {{"plugin", report.plugin},      {"version", report.version},
          {"file", report.file.string()}, {"scope", report.scope},
          {"target", report.target},      {"action", report.action},
          {"flags", report.flags},        {"steps", std::move(steps)},
          {"hung", report.hung},          {"verdict", report.passed() ? "PASS" : "FAIL"}};
}

}  // namespace blade
