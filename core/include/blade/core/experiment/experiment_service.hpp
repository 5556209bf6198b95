// The experiment service: validation, persistence, dispatch to executors,
// timeouts, retries, callbacks, recovery. Callers (HTTP routes, the CLI's
// compatibility paths, tests) hand it plain structs and get results or a
// blade::Error back; it knows nothing about HTTP.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "blade/core/experiment/callback_notifier.hpp"
#include "blade/core/experiment/event_bus.hpp"
#include "blade/core/experiment/scheduler.hpp"
#include "blade/core/model/error.hpp"
#include "blade/core/model/experiment.hpp"
#include "blade/core/model/timeout.hpp"
#include "blade/core/plugin/crash_record.hpp"
#include "blade/core/plugin/executor.hpp"
#include "blade/core/plugin/executor_router.hpp"
#include "blade/core/plugin/plugin_reload.hpp"
#include "blade/core/store/store.hpp"

namespace blade {

struct ServiceSettings {
  // How long a synchronous create or destroy waits for its job.
  std::chrono::milliseconds sync_wait{std::chrono::seconds(30)};
  // The deadline given to each executor call.
  std::chrono::milliseconds call_deadline{std::chrono::seconds(60)};
  // A failed destroy is retried after this, doubling up to the max.
  std::chrono::milliseconds destroy_retry_first{std::chrono::seconds(1)};
  std::chrono::milliseconds destroy_retry_max{std::chrono::seconds(60)};
  // Refuse creates beyond this many active experiments; 0 = no cap.
  std::int64_t max_active = 0;
  // Recovery quarantines an experiment whose destroy the daemon died in this
  // many times (SIGKILLs leave no crash record; a crash record quarantines
  // at once).
  std::int64_t max_recovery_attempts = 3;
};

// Who asked, for the audit log.
struct Caller {
  std::string actor = "system";  // a token's name, never the token
  std::string remote;
};

struct CreateRequest {
  std::string scope = "host";
  std::string target;
  std::string action;  // or an alias
  FlagValues flags;
  bool async = false;
  std::optional<std::string> timeout;  // "120", "90s", "5m"
  std::string callback;
  bool dry_run = false;
};

struct CreateResult {
  Experiment experiment;
  // Set for a dry run: executor, normalised flags and the executor's plan.
  std::optional<nlohmann::json> plan;
  // Set when the experiment failed: what kind of failure it was.
  std::optional<ErrorCode> failure;
  // `experiment` as announced (to_json_text), the same text as its event,
  // for a route to send as it is; null for a dry run.
  JsonText json;
};

struct DestroyResult {
  Experiment experiment;
  std::optional<ErrorCode> failure;  // destroy failed; it is retried
  JsonText json;                     // `experiment` as announced, as for CreateResult
};

struct PrepareRequest {
  std::string type;
  FlagValues flags;
};

// Serves preparations of one type (e.g. attaching the JVM agent).
class PreparationHandler {
 public:
  virtual ~PreparationHandler() = default;
  virtual std::string name() const = 0;
  virtual CallOutcome prepare(const Preparation &p, const CallOptions &options) = 0;
  virtual CallOutcome revoke(const Preparation &p, const CallOptions &options) = 0;
};

struct RecoveryReport {
  int destroyed = 0;
  int failed = 0;       // still destroying; retried
  int quarantined = 0;  // left destroying, no automatic calls
};


class ExperimentService {
 public:
  // `executors` decides what runs each experiment (an ExecutorRouter in
  // bladed, a fake in tests); it must outlive the service.
  ExperimentService(Store &store, const ExecutorSource &executors, Scheduler &scheduler,
                    EventBus &events, CallbackNotifier *callbacks, ServiceSettings settings = {});
  ~ExperimentService();

  // The flags of the action a create of (scope, target, action) would run,
  // chosen as create chooses its executor. Error(NotFound) when none serves.
  std::vector<FlagSpec> flag_specs(const std::string &scope, const std::string &target,
                                   const std::string &action) const;

  CreateResult create(const CreateRequest &request, const Caller &caller = {});
  // Idempotent: a destroyed or failed experiment is returned as it is.
  // `force` marks it destroyed even if the executor cannot roll it back.
  DestroyResult destroy(const std::string &uid, const Caller &caller = {}, bool force = false);
  Experiment get(const std::string &uid) const;
  Page<Experiment> list(const ExperimentFilter &filter) const;

  void add_preparation_handler(const std::string &type,
                               std::shared_ptr<PreparationHandler> handler);
  Preparation prepare(const PrepareRequest &request, const Caller &caller = {});
  Preparation revoke(const std::string &uid, const Caller &caller = {});
  Preparation get_preparation(const std::string &uid) const;
  Page<Preparation> list_preparations(const PreparationFilter &filter) const;

  // At start: rolls back everything the store shows active, left in
  // created, or past its deadline; audits each. Waits for the outcome.
  // `crashed`: the call the previous daemon died in, if it left a record;
  // a destroy named there is quarantined, not called again.
  RecoveryReport recover(const std::optional<CrashedCall> &crashed = std::nullopt);
  // At SIGTERM: refuses new work and rolls back every active experiment;
  // waits for the outcome.
  RecoveryReport destroy_all_active(const std::string &reason);
  // Runs `change` (a plugin reload) while no create is between choosing its
  // executor and recording it (in the store, or as a create in flight),
  // handing it a predicate that tells whether experiments (in flight,
  // created, running or destroying) still need a plugin.
  using PluginChange =
      std::function<ReloadReport(const std::function<bool(const std::string &)> &in_use)>;
  ReloadReport change_plugins(const PluginChange &change);

  // A plugin reports that the fault of experiment `uid` ended on its own
  // (host API fault_ended): a running experiment of that plugin becomes
  // failed with `reason`, audited and announced. Returns at once; the change
  // runs on the experiment's strand. Unknown uids and other states are
  // ignored (a destroy racing the report wins).
  void fault_ended(const std::string &plugin, const std::string &uid, const std::string &reason);

  // After recovery: timers for running experiments' deadlines (there are
  // none after a recovery, but a daemon keeping faults across a restart has).
  void rearm_deadlines();

 private:
  // What a job did: the failure kind (if any) and the experiment as stored.
  struct RunResult {
    std::optional<ErrorCode> code;
    std::string message;
    std::optional<Experiment> experiment;
    bool forgotten = false;  // refused before any step: no row is left
    JsonText json = nullptr;  // `experiment` as announced
  };
  // How a state change reaches the store: the row exists (update), or this
  // is its first write (a create whose executor writes ahead).
  enum class RowWrite { Update, Insert };
  // Drops the deadline timer of `uid`, if one is armed.
  void cancel_deadline(const std::string &uid);

  // Jobs, run holding the experiment's lane (on its strand, or on the
  // caller's thread for an in-process executor).
  // `refusal_leaves_nothing`: the caller waits for the answer, so a create
  // the executor refuses as INVALID_ARGUMENT before taking any step is
  // removed from the store and answered as an error, as the spec check's
  // refusal is (an async caller holds the uid already: it stays, failed).
  // `stored`: the row was inserted (created) before the call; when false
  // (the executor writes ahead) its first write is the first save_restore,
  // or the outcome.
  RunResult run_create(Experiment e, const Caller &caller, const std::string &audit_action,
                       bool refusal_leaves_nothing = false, bool stored = true);
  // `recovering`: counts the attempt in the row before the call.
  // `direct`: the caller waits on its own thread for an in-process call, so
  // no `destroying` row is written first (a running row is rolled back by
  // recovery just the same).
  RunResult run_destroy(const std::string &uid, const Caller &caller, bool force, int attempt,
                        const std::string &audit_action, bool recovering = false,
                        bool direct = false);
  // Forgets a create refused before any step, leaving its audit line.
  // `has_row`: its row was stored (and announced created), so the row is
  // removed with the audit line and its end announced; false (the row
  // stays) if it cannot. Without a row only the audit line is written
  // and nothing is announced; always true.
  bool forget_refused(const Experiment &e, const Caller &caller, const std::string &audit_action,
                      const std::string &message, bool has_row);
  void schedule_destroy_retry(const std::string &uid, int attempt);
  // The wait before retry `attempt` (0-based): doubling up to the max.
  std::chrono::milliseconds retry_delay(int attempt) const;
  // A destroyed experiment's row could not be written: announce, retry.
  void store_write_failed(const Experiment &e, const AuditEntry &audit, const Error &err);
  // Writes `e` once the store takes writes again, as `write` says: the
  // caller knows whether the row exists. A destroying experiment then gets
  // its destroy retried.
  void retry_store_write(Experiment e, AuditEntry audit, RowWrite write, int attempt);
  void quarantine(Experiment &e, const std::string &why);
  RecoveryReport roll_back(const std::vector<Experiment> &experiments,
                           const std::string &audit_action, bool recovering);
  std::shared_ptr<PreparationHandler> handler_for(const std::string &type) const;
  // The executors of every created, running or destroying experiment.
  std::set<std::string> executors_in_use() const;

  // Persists (with its audit line, if given), then announces, the JSON
  // text made once; returns that text. `failed_executor`: the executor whose
  // call failed, when this change reports one (see Event).
  JsonText transition(Experiment &e, const AuditEntry *audit = nullptr,
                      RowWrite write = RowWrite::Update, std::string failed_executor = {});
  void arm_deadline(const Experiment &e);
  void audit(const Caller &caller, const std::string &action, const std::string &subject,
             std::string params_json, const std::string &outcome);
  // Writes one audit line on its own; a failure is logged, not thrown.
  void append_audit(const AuditEntry &a);
  // The active map: `e` as just stored (dropped once terminal), or as a
  // create in flight that has no row yet.
  void remember(const Experiment &e);
  void forget_active(const std::string &uid);
  // From the active map, else from the store; nullopt if neither has it.
  std::optional<Experiment> find_experiment(const std::string &uid) const;
  CallOptions call_options() const;
  // Posts `job` for `uid` and waits up to sync_wait; false on timeout.
  bool run_and_wait(const std::string &uid, std::function<void()> job);

  Store &store_;
  const ExecutorSource &executors_;
  Scheduler &scheduler_;
  EventBus &events_;
  CallbackNotifier *callbacks_;
  ServiceSettings settings_;
  std::atomic<bool> stopping_{false};
  // Shared by creates from resolve to insert; exclusive for a plugin change.
  std::shared_mutex plugin_change_;

  // Active experiments (created, running, destroying) as the store has
  // them, and creates in flight whose executor writes ahead (no row yet):
  // destroys, fault_ended and plugin changes read here, not the store. An
  // entry changes under its uid's lane, right after its row does; rows of
  // an earlier run are read from the store.
  mutable std::mutex active_mutex_;
  std::unordered_map<std::string, Experiment> active_;

  mutable std::mutex mutex_;  // guards the maps below
  std::map<std::string, Scheduler::TimerId> deadline_timers_;
  std::map<std::string, std::shared_ptr<PreparationHandler>> preparation_handlers_;
};

// blade_status of an executor's outcome -> the error kind callers see.
ErrorCode error_code_for_status(int status);

}  // namespace blade
