#include "blade/core/experiment/experiment_service.hpp"

#include <future>

#include <fmt/format.h>

#include <blade/failpoint.hpp>
#include <blade/plugin.h>

#include "blade/core/model/bounded_json.hpp"
#include "blade/core/model/log.hpp"
#include "blade/core/spec/ssh_channel.hpp"

namespace blade {

using std::chrono::steady_clock;
using std::chrono::system_clock;

namespace {

// Milliseconds are what the store keeps; an experiment handed back from
// memory must read the same as one read back from the store.
SystemTime now() {
  return std::chrono::floor<std::chrono::milliseconds>(system_clock::now());
}

// Where a system-clock deadline falls on the steady clock that timers use.
steady_clock::time_point to_steady(SystemTime t) {
  auto left = t - system_clock::now();
  return steady_clock::now() + std::chrono::duration_cast<steady_clock::duration>(left);
}

PluginRequest request_of(const Experiment &e) {
  PluginRequest r;
  r.uid = e.uid;
  r.scope = e.scope;
  r.target = e.target;
  r.action = e.action;
  r.flags = e.flags;
  if (!e.restore_json.empty()) r.restore_json = e.restore_json;
  return r;
}

nlohmann::json parse_or_null(const std::string &text) {
  if (text.empty()) return nullptr;
  auto j = parse_bounded_json(text);
  return j.problem == JsonProblem::None ? std::move(j.value) : nlohmann::json(text);
}

// A destroy's report as stored: the executor's RESULT when it is a JSON
// object (a plugin's, ABI 1.4, which the host already checked; or an
// external binary's Response result), else none. Other values (ChaosBlade
// binaries answer a destroy with a bare string) say nothing worth keeping.
std::string destroy_report(const std::string &result_json) {
  if (result_json.empty()) return {};
  auto j = parse_bounded_json(result_json);
  return j.problem == JsonProblem::None && j.value.is_object() ? result_json : std::string();
}

std::string outcome_text(const std::optional<ErrorCode> &failure, const std::string &message) {
  if (!failure) return "ok";
  return fmt::format("{}: {}", to_string(*failure), message);
}

}  // namespace

ErrorCode error_code_for_status(int status) {
  switch (status) {
    case BLADE_STATUS_INVALID_ARGUMENT:
      return ErrorCode::InvalidArgument;
    case BLADE_STATUS_ALREADY_EXISTS:
      return ErrorCode::AlreadyExists;
    case BLADE_STATUS_NOT_SUPPORTED:
    case BLADE_STATUS_PERMISSION_DENIED:
    case BLADE_STATUS_NOT_FOUND:
    case BLADE_STATUS_FAILED_PRECONDITION:
      return ErrorCode::FailedPrecondition;
    case BLADE_STATUS_TIMEOUT:
    case BLADE_STATUS_CANCELLED:
      return ErrorCode::Unavailable;
    default:
      return ErrorCode::Internal;
  }
}

ExperimentService::ExperimentService(Store &store, const ExecutorSource &executors,
                                     Scheduler &scheduler, EventBus &events,
                                     CallbackNotifier *callbacks, ServiceSettings settings)
    : store_(store),
      executors_(executors),
      scheduler_(scheduler),
      events_(events),
      callbacks_(callbacks),
      settings_(std::move(settings)) {}

ExperimentService::~ExperimentService() {
  stopping_ = true;
}

std::vector<FlagSpec> ExperimentService::flag_specs(const std::string &scope,
                                                    const std::string &target,
                                                    const std::string &action) const {
  // `r` holds the executor (and so the plugin) while its spec is copied.
  const Route r = executors_.resolve(scope, target, action);
  std::vector<FlagSpec> flags;
  for (const FlagSpec *flag : effective_flags(*r.target, *r.action))
    flags.push_back(*flag);
  return flags;
}

CallOptions ExperimentService::call_options() const {
  CallOptions o;
  o.deadline = steady_clock::now() + settings_.call_deadline;
  return o;
}

namespace {

AuditEntry audit_entry(const Caller &caller, const std::string &action, const std::string &subject,
                       std::string params_json, const std::string &outcome) {
  AuditEntry a;
  a.time = now();
  a.actor = caller.actor;
  a.remote = caller.remote;
  a.action = action;
  a.subject = subject;
  a.params_json = std::move(params_json);
  a.outcome = outcome;
  return a;
}

// {"action":..,"flags":{..},"target":..}, written as text: no JSON value is
// built for a line that is only stored.
std::string audit_params(const Experiment &e) {
  std::string out;
  JsonObjectWriter(out).string("action", e.action).flags("flags", e.flags)
      .string("target", e.target).close();
  return out;
}

// A destroy's audit params: {"action":..,"attempt":N[,"force":true],"target":..}.
std::string destroy_audit_params(const Experiment &e, int attempt, bool force) {
  std::string out;
  JsonObjectWriter w(out);
  w.string("action", e.action).raw("attempt", std::to_string(attempt + 1));
  if (force) w.raw("force", "true");
  w.string("target", e.target).close();
  return out;
}

JsonText json_text_of(const Experiment &e) {
  return std::make_shared<const std::string>(to_json_text(e));
}

}  // namespace

void ExperimentService::audit(const Caller &caller, const std::string &action,
                              const std::string &subject, std::string params_json,
                              const std::string &outcome) {
  append_audit(audit_entry(caller, action, subject, std::move(params_json), outcome));
}

void ExperimentService::append_audit(const AuditEntry &a) {
  try {
    store_.append_audit(a);
  } catch (const Error &e) {
    // The fault's own state is already persisted; a lost audit line is
    // logged loudly rather than undoing the experiment.
    log::error("audit write failed",
               {{"action", a.action}, {"subject", a.subject}, {"error", e.what()}});
  }
}

JsonText ExperimentService::transition(Experiment &e, const AuditEntry *audit, RowWrite write,
                                       std::string failed_executor) {
  e.updated_at = now();
  // Persisted before anyone hears of it.
  if (write == RowWrite::Insert) {
    store_.insert_experiment(e, audit);
  } else {
    store_.update_experiment(e, audit);
  }
  remember(e);
  JsonText json = json_text_of(e);
  events_.publish("experiment", json, std::move(failed_executor));
  bool announced = e.status == ExperimentStatus::Running || is_terminal(e.status);
  if (callbacks_ && !e.callback.empty() && announced) callbacks_->notify(e.callback, *json);
  return json;
}

void ExperimentService::remember(const Experiment &e) {
  std::lock_guard lock(active_mutex_);
  if (is_terminal(e.status)) {
    active_.erase(e.uid);
  } else {
    active_.insert_or_assign(e.uid, e);
  }
}

void ExperimentService::forget_active(const std::string &uid) {
  std::lock_guard lock(active_mutex_);
  active_.erase(uid);
}

std::optional<Experiment> ExperimentService::find_experiment(const std::string &uid) const {
  {
    std::lock_guard lock(active_mutex_);
    if (auto it = active_.find(uid); it != active_.end()) return it->second;
  }
  return store_.get_experiment(uid);
}

void ExperimentService::arm_deadline(const Experiment &e) {
  if (!e.deadline) return;
  std::string uid = e.uid;
  auto id = scheduler_.schedule(uid, to_steady(*e.deadline), [this, uid] {
    try {
      run_destroy(uid, Caller{"timeout", ""}, false, 0, "experiment.timeout");
    } catch (const Error &err) {
      log::error("timed destroy failed", {{"uid", uid}, {"error", err.what()}});
      schedule_destroy_retry(uid, 0);
    }
  });
  std::lock_guard lock(mutex_);
  deadline_timers_[uid] = id;
}

bool ExperimentService::run_and_wait(const std::string &uid, std::function<void()> job) {
  auto done = std::make_shared<std::promise<void>>();
  auto future = done->get_future();
  scheduler_.post(uid, [job = std::move(job), done] {
    // A job that throws (the store failing under it) answers its caller at
    // once with the real error instead of leaving it to time out.
    try {
      job();
      done->set_value();
    } catch (...) {
      done->set_exception(std::current_exception());
    }
  });
  if (future.wait_for(settings_.sync_wait) != std::future_status::ready) return false;
  future.get();  // rethrows the job's error
  return true;
}

CreateResult ExperimentService::create(const CreateRequest &req, const Caller &caller) {
  if (stopping_) throw Error(ErrorCode::Unavailable, "bladed is shutting down");
  std::vector<FieldError> missing;
  if (req.target.empty()) missing.push_back({"target", "required"});
  if (req.action.empty()) missing.push_back({"action", "required"});
  if (req.scope.empty()) missing.push_back({"scope", "must not be empty"});
  if (!missing.empty())
    throw Error(ErrorCode::InvalidArgument, missing[0].field + ": required", missing);

  // A reload must not drop the plugin between this choice and the insert
  // that makes the experiment visible to its in_use check.
  std::shared_lock plugins_lock(plugin_change_);
  Route r = executors_.resolve(req.scope, req.target, req.action);
  FlagValues given = req.flags;
  refuse_ssh_channel(*r.target, *r.action, given);
  FlagValues flags = validate_flags(*r.target, *r.action, given);
  std::optional<std::int64_t> timeout;
  if (req.timeout) timeout = parse_optional_timeout(*req.timeout);
  if (!req.callback.empty() && !is_valid_callback_url(req.callback)) {
    throw Error(ErrorCode::InvalidArgument, "callback: must be an http:// or https:// URL",
                {{"callback", "must be an http:// or https:// URL"}});
  }

  Experiment e;
  e.scope = req.scope;
  e.target = r.target->target;
  e.action = r.action->name;
  e.flags = std::move(flags);
  e.executor = r.executor->name();
  e.timeout_s = timeout;
  e.callback = req.callback;
  e.created_at = e.updated_at = now();

  if (req.dry_run) {
    auto outcome = r.executor->dry_run(request_of(e), call_options());
    // Input the plugin refuses is refused in a dry run as in a create; other
    // failures (no dry run in this plugin) leave a note beside the plan.
    if (outcome.status == BLADE_STATUS_INVALID_ARGUMENT) {
      throw executor_error(ErrorCode::InvalidArgument, outcome.message);
    }
    nlohmann::json plan = {
        {"executor", e.executor},
        {"scope", e.scope},
        {"target", e.target},
        {"action", e.action},
        {"flags", e.flags},
        {"timeout", timeout ? nlohmann::json(*timeout) : nlohmann::json(nullptr)},
        {"plan", parse_or_null(outcome.plan_json)}};
    if (!outcome.ok()) plan["note"] = outcome.message;
    return {e, plan, std::nullopt, nullptr};
  }

  if (settings_.max_active > 0 && store_.count_active_experiments() >= settings_.max_active) {
    throw Error(
        ErrorCode::ResourceExhausted,
        fmt::format("{} experiments are active, the configured maximum", settings_.max_active));
  }
  if (timeout) e.deadline = e.created_at + std::chrono::seconds(*timeout);

  // An in-process plugin is called on this thread (no hop to the scheduler
  // and back), holding the experiment's lane so none of its scheduled jobs
  // overlaps the call. An async create's caller holds the uid at once, and
  // an external binary's run may outlast the wait: those are stored first
  // and run on the scheduler.
  const bool direct = !req.async && r.executor->in_process();
  // A create whose executor writes ahead stores nothing before the call: its
  // first write is its first restore record, or the outcome.
  const bool store_first = !(direct && r.executor->writes_ahead());
  std::unique_lock<std::mutex> lane;
  for (int tries = 0;; ++tries) {
    e.uid = new_uid();
    if (direct) lane = std::unique_lock(scheduler_.lane(e.uid));
    try {
      if (store_first) {
        store_.insert_experiment(e);
      } else if (std::lock_guard lock(active_mutex_); active_.count(e.uid) > 0) {
        // Against the active map only (no read): a stored row with this uid
        // makes the insert after the call fail, and the fault is undone.
        throw Error(ErrorCode::AlreadyExists, fmt::format("experiment {} already exists", e.uid));
      }
      break;
    } catch (const Error &err) {
      // 64 random bits collide only by bad luck; a second collision is a bug.
      if (err.code() != ErrorCode::AlreadyExists || tries > 0) throw;
      if (lane) lane.unlock();
    }
  }
  // In the active map before the plugin lock is let go: a reload sees the
  // create in flight as using its plugin even while no row exists.
  remember(e);
  plugins_lock.unlock();
  const std::string uid = e.uid;
  JsonText created;
  if (store_first) {
    created = json_text_of(e);
    events_.publish("experiment", created);
  }

  if (req.async) {
    audit(caller, "experiment.create", uid, audit_params(e), "accepted");
    scheduler_.post(uid, [this, e, caller] { run_create(e, caller, "experiment.create.run"); });
    return {e, std::nullopt, std::nullopt, created};
  }

  if (direct) {
    RunResult result = run_create(e, caller, "experiment.create", true, store_first);
    lane.unlock();
    if (result.forgotten) throw executor_error(ErrorCode::InvalidArgument, result.message);
    return {result.experiment ? *result.experiment : get(uid), std::nullopt, result.code,
            result.json};
  }

  auto result = std::make_shared<RunResult>();
  // Cleared when this wait gives up: the caller is then told to query the
  // uid, so a late refusal must leave the row for it to find.
  auto waiting = std::make_shared<std::atomic<bool>>(true);
  if (!run_and_wait(uid, [this, e, caller, result, waiting] {
        *result = run_create(e, caller, "experiment.create", waiting->load());
      })) {
    waiting->store(false);
    audit(caller, "experiment.create", uid, audit_params(e), "UNAVAILABLE: still running");
    throw Error(ErrorCode::Unavailable,
                fmt::format("experiment {} is still being created after {} ms; query it by uid",
                            uid, settings_.sync_wait.count()));
  }
  if (result->forgotten) throw executor_error(ErrorCode::InvalidArgument, result->message);
  Experiment done = result->experiment ? *result->experiment : get(uid);
  JsonText json = result->json ? result->json : json_text_of(done);
  return {std::move(done), std::nullopt, result->code, std::move(json)};
}

// `e` is the experiment as create() recorded it (its row, or the create in
// flight): nothing can change it before this job, the first in its lane, so
// it is not read back.
ExperimentService::RunResult ExperimentService::run_create(Experiment e, const Caller &caller,
                                                           const std::string &audit_action,
                                                           bool refusal_leaves_nothing,
                                                           bool stored) {
  const std::string uid = e.uid;
  if (stored) {
    // A destroy on a caller's thread may take the lane before a queued
    // create: it ended the experiment, so there is nothing to create.
    auto current = find_experiment(uid);
    if (!current || current->status != ExperimentStatus::Created) {
      RunResult skipped{{}, {}, current};
      return skipped;
    }
  }
  auto executor = executors_.executor_for(e);
  CallOutcome outcome;
  // Set once a restore record put the row in the store (as created).
  auto row_written = std::make_shared<std::atomic<bool>>(stored);
  try {
    if (!executor) {
      outcome.status = BLADE_STATUS_FAILED_PRECONDITION;
      outcome.message = fmt::format("executor {} is no longer available", e.executor);
    } else if (stopping_) {
      outcome.status = BLADE_STATUS_CANCELLED;
      outcome.message = "bladed is shutting down";
    } else {
      CallOptions options = call_options();
      // Write-ahead restore records (ABI 1.2) go to the row while it is
      // still created (the first one inserts it when nothing was stored
      // before the call), so a crash after any step leaves what destroy
      // needs.
      options.save_restore = [this, e, row_written](const std::string &record) {
        store_.save_restore_record(e, record, now());
        row_written->store(true);
        Experiment created = e;
        created.restore_json = record;
        remember(created);
      };
      BLADE_FAILPOINT("core.create.before_plugin");
      outcome = executor->create(request_of(e), options);
      BLADE_FAILPOINT("core.create.after_plugin");
    }
  } catch (...) {
    // The row (if any) stays as the store has it; the map must not say more.
    if (!row_written->load()) forget_active(uid);
    throw;
  }
  const bool has_row = row_written->load();
  RunResult result;
  if (refusal_leaves_nothing && outcome.status == BLADE_STATUS_INVALID_ARGUMENT &&
      outcome.restore_json.empty()) {
    if (forget_refused(e, caller, audit_action, outcome.message, has_row)) {
      result.code = ErrorCode::InvalidArgument;
      result.message = outcome.message;
      result.forgotten = true;
      return result;
    }
  }
  std::string failed_executor;
  if (outcome.ok()) {
    e.status = ExperimentStatus::Running;
    e.result_json = outcome.result_json.empty() ? "{}" : outcome.result_json;
    e.restore_json = outcome.restore_json.empty() ? "{}" : outcome.restore_json;
    e.started_at = now();
  } else {
    e.status = ExperimentStatus::Failed;
    e.error = outcome.message;
    e.finished_at = now();
    result.code = error_code_for_status(outcome.status);
    result.message = outcome.message;
    failed_executor = e.executor;
  }
  if (!outcome.ok() && !outcome.restore_json.empty() && executor) {
    // The plugin failed after writing a record ahead: it promised to undo
    // its steps, and its destroy (idempotent) makes sure of it.
    e.restore_json = outcome.restore_json;
    auto undo = executor->destroy(request_of(e), call_options());
    e.destroy_result_json = destroy_report(undo.result_json);
    if (!undo.ok()) {
      e.status = ExperimentStatus::Destroying;
      e.finished_at.reset();
      e.error = fmt::format("{}; undoing the partial create failed: {}", outcome.message,
                            undo.message);
    }
  }
  AuditEntry a = audit_entry(caller, audit_action, uid, audit_params(e),
                             outcome_text(result.code, result.message));
  try {
    result.json = transition(e, &a, has_row ? RowWrite::Update : RowWrite::Insert,
                             std::move(failed_executor));
  } catch (const Error &store_error) {
    // The map says what the store has: the created row, or nothing.
    if (!has_row) forget_active(uid);
    // The fault is applied but cannot be recorded as running, so nothing
    // would ever roll it back: undo it now and answer the store's error. A
    // stored row stays created (with any record written ahead), so a later
    // start destroys it again, which finds nothing left.
    if (outcome.ok() && executor) {
      auto undo = executor->destroy(request_of(e), call_options());
      log::error("create rolled back: its state could not be stored",
                 {{"uid", uid}, {"store_error", store_error.what()},
                  {"rollback", undo.ok() ? "ok" : undo.message}});
      std::string why = fmt::format(
          "the fault was rolled back because its state could not be stored: {}",
          store_error.what());
      if (store_error.code() == ErrorCode::AlreadyExists && !has_row) {
        // The uid is another experiment's (64 random bits collided): that
        // row is not this one's to write.
      } else if (undo.ok()) {
        // Written once the store takes writes again, so the row does not
        // linger in created until the next start (nor stay missing).
        e.status = ExperimentStatus::Failed;
        e.error = why;
        e.result_json = "{}";
        e.finished_at = now();
        AuditEntry failed = audit_entry(caller, audit_action, uid, audit_params(e),
                                        outcome_text(store_error.code(), why));
        retry_store_write(e, failed, has_row ? RowWrite::Update : RowWrite::Insert, 0);
      } else if (!has_row) {
        // No row would lead recovery to the fault: written as destroying
        // once the store takes writes again, then destroyed by retries.
        e.status = ExperimentStatus::Destroying;
        e.error = fmt::format("{}; the rollback failed: {}", why, undo.message);
        AuditEntry failed = audit_entry(caller, audit_action, uid, audit_params(e),
                                        outcome_text(store_error.code(), e.error));
        retry_store_write(e, failed, RowWrite::Insert, 0);
      }
      throw Error(store_error.code(), why);
    }
    throw;
  }
  if (e.status == ExperimentStatus::Destroying) {
    schedule_destroy_retry(uid, 0);
  } else if (outcome.ok()) {
    arm_deadline(e);
  }
  result.experiment = e;
  return result;
}

bool ExperimentService::forget_refused(const Experiment &e, const Caller &caller,
                                       const std::string &audit_action, const std::string &message,
                                       bool has_row) {
  AuditEntry a = audit_entry(caller, audit_action, e.uid, audit_params(e),
                             outcome_text(ErrorCode::InvalidArgument, message) + " (not stored)");
  if (!has_row) {
    // Nothing was stored and nobody heard of it (no event announced it
    // created): only the audit line is left, and no end to announce.
    forget_active(e.uid);
    append_audit(a);
    return true;
  }
  try {
    store_.forget_refused_experiment(e.uid, a);
  } catch (const Error &err) {
    // Kept as a failed experiment instead: visible, and nothing to undo.
    log::warn("a refused create could not be removed; it stays as failed",
              {{"uid", e.uid}, {"error", err.what()}});
    return false;
  }
  forget_active(e.uid);
  // Watchers saw it created: they hear that it ended, and that no row stays.
  Experiment gone = e;
  gone.status = ExperimentStatus::Failed;
  gone.error = message;
  gone.finished_at = gone.updated_at = now();
  auto json = to_json(gone);
  json["stored"] = false;
  events_.publish("experiment", std::make_shared<const std::string>(json.dump()), e.executor);
  return true;
}

DestroyResult ExperimentService::destroy(const std::string &uid, const Caller &caller, bool force) {
  auto e = find_experiment(uid);
  if (!e)
    throw Error(ErrorCode::NotFound, fmt::format("no experiment {}", uid), {{"uid", "not found"}});
  if (is_terminal(e->status)) return {*e, std::nullopt, json_text_of(*e)};
  RunResult result;
  if (auto executor = executors_.executor_for(*e); executor && executor->in_process()) {
    // On this thread, as create does; the lane keeps its scheduled jobs out.
    std::lock_guard lane(scheduler_.lane(uid));
    result = run_destroy(uid, caller, force, 0, "experiment.destroy", false, true);
  } else {
    auto shared = std::make_shared<RunResult>();
    if (!run_and_wait(uid, [this, uid, caller, force, shared] {
          *shared = run_destroy(uid, caller, force, 0, "experiment.destroy");
        })) {
      throw Error(ErrorCode::Unavailable,
                  fmt::format("experiment {} is still being destroyed after {} ms; query it by uid",
                              uid, settings_.sync_wait.count()));
    }
    result = std::move(*shared);
  }
  Experiment done = result.experiment ? std::move(*result.experiment) : get(uid);
  JsonText json = result.json ? std::move(result.json) : json_text_of(done);
  return {std::move(done), result.code, std::move(json)};
}

ExperimentService::RunResult ExperimentService::run_destroy(const std::string &uid,
                                                            const Caller &caller, bool force,
                                                            int attempt,
                                                            const std::string &audit_action,
                                                            bool recovering, bool direct) {
  auto found = find_experiment(uid);
  if (!found || is_terminal(found->status)) return {{}, {}, found};
  Experiment &e = *found;
  cancel_deadline(uid);
  const std::string params = destroy_audit_params(e, attempt, force);

  if (e.quarantined) {
    // The plugin's destroy crashed the daemon before: calling it again
    // would again. Only an operator's force ends it, without the call.
    if (!force) {
      std::string why = fmt::format("experiment {} is quarantined ({}); check the host, then "
                                    "destroy it with force=true",
                                    uid, e.error);
      return {ErrorCode::FailedPrecondition, why, e};
    }
    e.status = ExperimentStatus::Destroyed;
    e.error = "forced by the operator while quarantined; the plugin was not called: " + e.error;
    e.finished_at = now();
    AuditEntry a = audit_entry(caller, audit_action, uid, params, "forced: quarantined");
    RunResult forced{{}, {}, std::nullopt};
    forced.json = transition(e, &a);
    forced.experiment = e;
    return forced;
  }

  // Counted before the call and stored: a daemon that dies inside this
  // destroy finds the count at its next start.
  if (recovering) ++e.recovery_attempts;
  if (recovering || (e.status != ExperimentStatus::Destroying && !direct)) {
    e.status = ExperimentStatus::Destroying;
    try {
      transition(e);
    } catch (const Error &err) {
      // The fault comes off first; its status is written when the store
      // takes writes again.
      log::error("could not record destroying; destroying anyway",
                 {{"uid", uid}, {"error", err.what()}});
    }
  }
  auto executor = executors_.executor_for(e);
  CallOutcome outcome;
  if (!executor) {
    outcome.status = BLADE_STATUS_FAILED_PRECONDITION;
    outcome.message = fmt::format("executor {} is not loaded", e.executor);
  } else {
    // A row left in created carries the record its create wrote ahead (or
    // none if it took no step yet); destroy undoes exactly that.
    BLADE_FAILPOINT("core.destroy.before_plugin");
    outcome = executor->destroy(request_of(e), call_options());
    BLADE_FAILPOINT("core.destroy.after_plugin");
    // Each call's report replaces the last (a retry's, recovery's), stored
    // with the status below whichever way the call went.
    e.destroy_result_json = destroy_report(outcome.result_json);
  }
  RunResult result;
  if (outcome.ok() || force) {
    e.status = ExperimentStatus::Destroyed;
    e.error = outcome.ok() ? "" : "forced by the operator; rollback failed: " + outcome.message;
    e.finished_at = now();
    AuditEntry a = audit_entry(caller, audit_action, uid, params,
                               outcome.ok() ? "ok" : "forced: " + outcome.message);
    try {
      result.json = transition(e, &a, RowWrite::Update, outcome.ok() ? "" : e.executor);
    } catch (const Error &err) {
      store_write_failed(e, a, err);
      result.code = err.code();
      result.message = fmt::format(
          "the fault was removed, but its status could not be stored ({}); retrying the write",
          err.what());
    }
    result.experiment = e;  // as stored (transition stamps updated_at)
    return result;
  }
  // Stays destroying, visibly, with the last error, until a retry succeeds
  // or an operator forces it.
  e.status = ExperimentStatus::Destroying;
  e.error = outcome.message;
  result = RunResult{error_code_for_status(outcome.status), outcome.message, std::nullopt};
  AuditEntry a =
      audit_entry(caller, audit_action, uid, params, outcome_text(result.code, result.message));
  try {
    result.json = transition(e, &a, RowWrite::Update, e.executor);
  } catch (const Error &err) {
    log::error("could not record a failed destroy", {{"uid", uid}, {"error", err.what()}});
  }
  result.experiment = e;
  log::warn("destroy failed, will retry", {{"uid", uid}, {"error", outcome.message}});
  schedule_destroy_retry(uid, attempt);
  return result;
}

std::chrono::milliseconds ExperimentService::retry_delay(int attempt) const {
  return std::min(settings_.destroy_retry_first * (1 << std::min(attempt, 16)),
                  settings_.destroy_retry_max);
}

void ExperimentService::schedule_destroy_retry(const std::string &uid, int attempt) {
  if (stopping_) return;
  const auto backoff = retry_delay(attempt);
  scheduler_.schedule(uid, steady_clock::now() + backoff, [this, uid, attempt] {
    try {
      run_destroy(uid, Caller{"retry", ""}, false, attempt + 1, "experiment.destroy");
    } catch (const Error &err) {
      log::error("destroy retry failed", {{"uid", uid}, {"error", err.what()}});
      schedule_destroy_retry(uid, attempt + 1);
    }
  });
}

void ExperimentService::store_write_failed(const Experiment &e, const AuditEntry &audit,
                                           const Error &err) {
  log::error("a destroyed experiment's status could not be stored; retrying",
             {{"uid", e.uid}, {"error", err.what()}});
  // Announced now (the fault is gone); the row follows when the store
  // recovers. Until then a restart would destroy it again: harmless, as
  // destroy is idempotent.
  events_.publish("experiment", json_text_of(e));
  retry_store_write(e, audit, RowWrite::Update, 0);
}

void ExperimentService::retry_store_write(Experiment e, AuditEntry audit, RowWrite write,
                                          int attempt) {
  if (stopping_) return;
  const auto backoff = retry_delay(attempt);
  std::string uid = e.uid;
  scheduler_.schedule(
      uid, steady_clock::now() + backoff,
      [this, e = std::move(e), audit = std::move(audit), write, attempt]() mutable {
        try {
          e.updated_at = now();
          // The write the caller named, as it knew the row when the write
          // failed. Should the store say otherwise (an earlier attempt whose
          // commit landed although it reported failure, say), the other
          // write, and that one from then on.
          try {
            if (write == RowWrite::Insert)
              store_.insert_experiment(e, &audit);
            else
              store_.update_experiment(e, &audit);
          } catch (const Error &err) {
            if (write == RowWrite::Insert && err.code() == ErrorCode::AlreadyExists) {
              write = RowWrite::Update;
              store_.update_experiment(e, &audit);
            } else if (write == RowWrite::Update && err.code() == ErrorCode::NotFound) {
              write = RowWrite::Insert;
              store_.insert_experiment(e, &audit);
            } else {
              throw;
            }
          }
        } catch (const Error &) {
          retry_store_write(std::move(e), std::move(audit), write, attempt + 1);
          return;
        }
        remember(e);
        if (e.status == ExperimentStatus::Destroying) schedule_destroy_retry(e.uid, 0);
      });
}

Experiment ExperimentService::get(const std::string &uid) const {
  auto e = store_.get_experiment(uid);
  if (!e)
    throw Error(ErrorCode::NotFound, fmt::format("no experiment {}", uid), {{"uid", "not found"}});
  return *e;
}

// Rows store the canonical action, but a ChaosBlade user filters by the
// name they typed (`status --target cpu --action load` after `create cpu
// load`): an alias is resolved through the spec of whatever serves the
// target now, on every route (/v1, /chaosblade, /api/v1), not only the CLI.
Page<Experiment> ExperimentService::list(const ExperimentFilter &filter) const {
  if (!filter.target || !filter.action) return store_.list_experiments(filter);
  ExperimentFilter canonical = filter;
  try {
    canonical.action =
        executors_.resolve(filter.scope.value_or("host"), *filter.target, *filter.action)
            .action->name;
  } catch (const Error &) {
    // Nothing serves it now (a plugin since removed): the stored name as given.
  }
  return store_.list_experiments(canonical);
}

RecoveryReport ExperimentService::recover(const std::optional<CrashedCall> &crashed) {
  std::vector<Experiment> todo = store_.experiments_needing_recovery(now());
  // Left in created by a crash mid-create: the plugin may have applied the
  // fault before the daemon died, so these are rolled back too.
  // (A created row past its deadline is in both lists; it is called once.)
  std::set<std::string> listed;
  for (const auto &e : todo)
    listed.insert(e.uid);
  for (auto &e : store_.created_experiments())
    if (listed.insert(e.uid).second) todo.push_back(std::move(e));
  RecoveryReport report;
  std::vector<Experiment> callable;
  for (auto &e : todo) {
    std::string why;
    if (crashed && crashed->uid == e.uid && crashed->op == "destroy") {
      why = fmt::format("bladed died of signal {} inside plugin {}'s destroy of this experiment",
                        crashed->signal, crashed->plugin);
    } else if (!e.quarantined && e.recovery_attempts >= settings_.max_recovery_attempts) {
      why = fmt::format("bladed died {} times while recovery destroyed this experiment",
                        e.recovery_attempts);
    }
    if (!why.empty() && !e.quarantined) quarantine(e, why);
    if (e.quarantined) {
      ++report.quarantined;
      continue;
    }
    callable.push_back(std::move(e));
  }
  RecoveryReport rolled = roll_back(callable, "experiment.recover", true);
  rolled.quarantined = report.quarantined;
  return rolled;
}

void ExperimentService::quarantine(Experiment &e, const std::string &why) {
  e.quarantined = true;
  e.status = ExperimentStatus::Destroying;
  e.error = "quarantined, no further automatic destroy calls: " + why;
  log::error("experiment quarantined", {{"uid", e.uid}, {"reason", why}});
  AuditEntry a = audit_entry(Caller{"system", ""}, "experiment.quarantine", e.uid,
                             audit_params(e), "quarantined: " + why);
  try {
    transition(e, &a);
  } catch (const Error &err) {
    log::error("could not record a quarantine", {{"uid", e.uid}, {"error", err.what()}});
  }
}

RecoveryReport ExperimentService::destroy_all_active(const std::string &reason) {
  stopping_ = true;
  log::info("rolling back active experiments", {{"reason", reason}});
  std::vector<Experiment> todo;
  for (auto &e : store_.active_experiments())
    if (!e.quarantined) todo.push_back(std::move(e));
  // A create in flight may have applied its fault already; its destroy is
  // queued behind it in the experiment's lane. One whose executor writes
  // ahead may have no row yet: the active map has it.
  for (auto &e : store_.created_experiments())
    todo.push_back(std::move(e));
  std::set<std::string> listed;
  for (const auto &e : todo)
    listed.insert(e.uid);
  {
    std::lock_guard lock(active_mutex_);
    for (const auto &[uid, e] : active_)
      if (!e.quarantined && listed.insert(uid).second) todo.push_back(e);
  }
  return roll_back(todo, "experiment.shutdown", false);
}

RecoveryReport ExperimentService::roll_back(const std::vector<Experiment> &experiments,
                                            const std::string &audit_action, bool recovering) {
  RecoveryReport report;
  std::vector<std::pair<std::string, std::future<RunResult>>> pending;
  for (const auto &e : experiments) {
    auto promise = std::make_shared<std::promise<RunResult>>();
    pending.emplace_back(e.uid, promise->get_future());
    std::string uid = e.uid;
    scheduler_.post(uid, [this, uid, promise, audit_action, recovering] {
      try {
        promise->set_value(
            run_destroy(uid, Caller{"system", ""}, false, 0, audit_action, recovering));
      } catch (const Error &err) {
        promise->set_value(RunResult{err.code(), err.what(), std::nullopt});
      }
    });
  }
  for (auto &[uid, future] : pending) {
    if (future.wait_for(settings_.sync_wait) == std::future_status::ready && !future.get().code) {
      ++report.destroyed;
    } else {
      ++report.failed;
      log::error("rollback did not complete", {{"uid", uid}});
    }
  }
  if (!experiments.empty()) {
    log::info("rollback finished", {{"action", audit_action},
                                    {"destroyed", std::to_string(report.destroyed)},
                                    {"failed", std::to_string(report.failed)}});
  }
  return report;
}

void ExperimentService::rearm_deadlines() {
  for (const auto &e : store_.active_experiments())
    if (e.status == ExperimentStatus::Running) arm_deadline(e);
}

// ---- preparations ---------------------------------------------------------

void ExperimentService::add_preparation_handler(const std::string &type,
                                                std::shared_ptr<PreparationHandler> handler) {
  std::lock_guard lock(mutex_);
  preparation_handlers_[type] = std::move(handler);
}

std::shared_ptr<PreparationHandler> ExperimentService::handler_for(const std::string &type) const {
  std::lock_guard lock(mutex_);
  auto it = preparation_handlers_.find(type);
  return it == preparation_handlers_.end() ? nullptr : it->second;
}

Preparation ExperimentService::prepare(const PrepareRequest &req, const Caller &caller) {
  if (stopping_) throw Error(ErrorCode::Unavailable, "bladed is shutting down");
  if (req.type.empty())
    throw Error(ErrorCode::InvalidArgument, "type: required", {{"type", "required"}});
  auto handler = handler_for(req.type);
  if (!handler) {
    throw Error(ErrorCode::NotFound,
                fmt::format("no executor serves preparation type '{}'", req.type),
                {{"type", "no executor serves this preparation type"}});
  }
  Preparation p;
  p.uid = new_uid();
  p.type = req.type;
  p.flags = req.flags;
  p.executor = handler->name();
  p.created_at = p.updated_at = now();
  store_.insert_preparation(p);
  events_.publish("preparation", to_json(p));
  std::string uid = p.uid;
  auto done = std::make_shared<Preparation>();
  if (!run_and_wait(uid, [this, handler, p, done]() mutable {
        auto outcome = handler->prepare(p, call_options());
        p.status = outcome.ok() ? PreparationStatus::Running : PreparationStatus::Failed;
        p.error = outcome.ok() ? "" : outcome.message;
        p.result_json = outcome.result_json.empty() ? "{}" : outcome.result_json;
        p.restore_json = outcome.restore_json;
        p.updated_at = now();
        store_.update_preparation(p);
        events_.publish("preparation", to_json(p));
        *done = p;
      })) {
    throw Error(ErrorCode::Unavailable,
                fmt::format("preparation {} is still running; query it by uid", uid));
  }
  audit(caller, "preparation.create", uid,
        nlohmann::json{{"type", p.type}, {"flags", p.flags}}.dump(),
        done->status == PreparationStatus::Running ? "ok" : "failed: " + done->error);
  return *done;
}

Preparation ExperimentService::revoke(const std::string &uid, const Caller &caller) {
  Preparation p = get_preparation(uid);
  if (p.status == PreparationStatus::Revoked || p.status == PreparationStatus::Failed) return p;
  auto handler = handler_for(p.type);
  if (!handler) {
    throw Error(ErrorCode::FailedPrecondition,
                fmt::format("no executor serves preparation type '{}' any more", p.type));
  }
  auto done = std::make_shared<Preparation>();
  if (!run_and_wait(uid, [this, handler, p, done]() mutable {
        auto outcome = handler->revoke(p, call_options());
        if (outcome.ok()) {
          p.status = PreparationStatus::Revoked;
          p.error.clear();
        } else {
          p.error = outcome.message;
        }
        p.updated_at = now();
        store_.update_preparation(p);
        events_.publish("preparation", to_json(p));
        *done = p;
      })) {
    throw Error(ErrorCode::Unavailable, fmt::format("preparation {} is still being revoked", uid));
  }
  audit(caller, "preparation.revoke", uid, nlohmann::json{{"type", p.type}}.dump(),
        done->status == PreparationStatus::Revoked ? "ok" : "failed: " + done->error);
  if (done->status != PreparationStatus::Revoked) {
    throw Error(ErrorCode::FailedPrecondition, "revoke failed: " + done->error);
  }
  return *done;
}

void ExperimentService::cancel_deadline(const std::string &uid) {
  std::lock_guard lock(mutex_);
  if (auto it = deadline_timers_.find(uid); it != deadline_timers_.end()) {
    scheduler_.cancel(it->second);
    deadline_timers_.erase(it);
  }
}

void ExperimentService::fault_ended(const std::string &plugin, const std::string &uid,
                                    const std::string &reason) {
  scheduler_.post(uid, [this, executor = executor_name(ExecutorKind::InProcess, plugin), uid,
                        reason] {
    try {
      auto found = find_experiment(uid);
      if (!found || found->executor != executor || found->status != ExperimentStatus::Running)
        return;
      Experiment &e = *found;
      cancel_deadline(uid);
      e.status = ExperimentStatus::Failed;
      e.error = "the fault ended on its own: " + reason;
      e.finished_at = now();
      AuditEntry a = audit_entry(Caller{executor, ""}, "experiment.fault_ended", uid,
                                 audit_params(e), "failed: " + reason);
      transition(e, &a);
    } catch (const Error &err) {
      log::error("recording an ended fault failed", {{"uid", uid}, {"error", err.what()}});
    }
  });
}

std::set<std::string> ExperimentService::executors_in_use() const {
  std::set<std::string> out;
  {
    // Creates in flight have no row until their plugin answers.
    std::lock_guard lock(active_mutex_);
    for (const auto &[uid, e] : active_)
      out.insert(e.executor);
  }
  for (const auto &e : store_.active_experiments())
    out.insert(e.executor);
  for (const auto &e : store_.created_experiments())
    out.insert(e.executor);
  return out;
}

ReloadReport ExperimentService::change_plugins(const PluginChange &change) {
  std::unique_lock lock(plugin_change_);
  // Read once for the whole change: the lock keeps creates out meanwhile.
  const std::set<std::string> in_use = executors_in_use();
  return change([&in_use](const std::string &plugin) {
    return in_use.count(executor_name(ExecutorKind::InProcess, plugin)) > 0;
  });
}

Preparation ExperimentService::get_preparation(const std::string &uid) const {
  auto p = store_.get_preparation(uid);
  if (!p)
    throw Error(ErrorCode::NotFound, fmt::format("no preparation {}", uid), {{"uid", "not found"}});
  return *p;
}

Page<Preparation> ExperimentService::list_preparations(const PreparationFilter &filter) const {
  return store_.list_preparations(filter);
}

}  // namespace blade
