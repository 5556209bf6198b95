#include "host_context.hpp"

#include <unistd.h>

#include <climits>
#include <cstdint>
#include <system_error>

#include <nlohmann/json.hpp>

#include "blade/core/model/bounded_json.hpp"
#include "blade/core/model/error.hpp"
#include "blade/core/model/log.hpp"
#include "blade/core/plugin/live_counters.hpp"

namespace blade {
namespace {

log::Level to_log_level(blade_log_level level) {
  switch (level) {
    case BLADE_LOG_DEBUG:
      return log::Level::Debug;
    case BLADE_LOG_INFO:
      return log::Level::Info;
    case BLADE_LOG_WARN:
      return log::Level::Warn;
    case BLADE_LOG_ERROR:
      return log::Level::Error;
  }
  return log::Level::Info;
}

void host_log(blade_host *host, blade_log_level level, const char *message) {
  if (!host || !message) return;
  try {
    log::write(to_log_level(level), message, {{"plugin", HostContext::from(host)->plugin_name()}});
  } catch (...) {
    // Logging must never unwind into plugin code.
  }
}

const blade_host_info *host_info(blade_host *host) {
  return host ? HostContext::from(host)->info() : nullptr;
}

blade_status set_output(blade_call *call, blade_output_field field, const char *data, size_t len) {
  if (!call || (!data && len > 0)) return BLADE_STATUS_INVALID_ARGUMENT;
  try {
    CallContext *ctx = CallContext::from(call);
    std::string text(data ? data : "", len);
    std::string *slot = nullptr;
    const char *name = "";
    switch (field) {
      case BLADE_OUTPUT_RESULT:
        slot = &ctx->outcome.result_json;
        name = "RESULT";
        break;
      case BLADE_OUTPUT_RESTORE:
        slot = &ctx->outcome.restore_json;
        name = "RESTORE";
        break;
      case BLADE_OUTPUT_PLAN:
        slot = &ctx->outcome.plan_json;
        name = "PLAN";
        break;
      case BLADE_OUTPUT_MESSAGE:
        ctx->outcome.message = std::move(text);
        return BLADE_STATUS_OK;
      default:
        return BLADE_STATUS_INVALID_ARGUMENT;
    }
    // The restore record is persisted and parsed again after a crash; take
    // only JSON so a bad record fails now, not at recovery. The depth cap is
    // the one every reader of these texts applies (bounded_json.hpp).
    const bool valid = json_depth_within(text) && nlohmann::json::accept(text);
    if (field == BLADE_OUTPUT_RESULT && ctx->in_destroy) {
      // A destroy's report is shown as an object beside the experiment's
      // fields; a bad one is dropped, and the destroy's status stands: the
      // undo it reports on happened or not whatever the text says.
      if (!valid || !nlohmann::json::parse(text).is_object()) {
        ctx->report_refused = true;
        return BLADE_STATUS_INVALID_ARGUMENT;
      }
    } else if (!valid) {
      ctx->invalid_outputs.emplace_back(name);
      return BLADE_STATUS_INVALID_ARGUMENT;
    }
    *slot = std::move(text);
    return BLADE_STATUS_OK;
  } catch (...) {
    return BLADE_STATUS_INTERNAL;
  }
}

int is_cancelled(blade_call *call) {
  if (!call) return 0;
  const CallOptions *o = CallContext::from(call)->options;
  if (o && o->cancel && o->cancel->load()) return 1;
  if (o && o->deadline && std::chrono::steady_clock::now() >= *o->deadline) return 1;
  return 0;
}

int64_t remaining_ms(blade_call *call) {
  if (!call) return INT64_MAX;
  const CallOptions *o = CallContext::from(call)->options;
  if (!o || !o->deadline) return INT64_MAX;
  return std::chrono::duration_cast<std::chrono::milliseconds>(*o->deadline -
                                                               std::chrono::steady_clock::now())
      .count();
}

void progress(blade_call *call, int32_t percent, const char *note) {
  if (!call) return;
  try {
    const CallOptions *o = CallContext::from(call)->options;
    if (o && o->on_progress) o->on_progress(percent, note ? note : "");
  } catch (...) {
    // A listener's failure is not the plugin's problem.
  }
}

void fault_ended(blade_host *host, const char *uid, const char *reason) {
  if (!host || !uid) return;
  try {
    HostContext::from(host)->fault_ended(uid, reason ? reason : "");
  } catch (...) {
    // Nothing unwinds into plugin code.
  }
}

blade_status save_restore(blade_call *call, const char *json, size_t len) {
  if (!call || (!json && len > 0)) return BLADE_STATUS_INVALID_ARGUMENT;
  try {
    CallContext *ctx = CallContext::from(call);
    if (!ctx->in_create) return BLADE_STATUS_FAILED_PRECONDITION;
    std::string text(json ? json : "", len);
    // Parsed again by a destroy after a crash: refuse what it could not read.
    if (!json_depth_within(text) || !nlohmann::json::accept(text))
      return BLADE_STATUS_INVALID_ARGUMENT;
    // A caller with no store (a direct call in a test, check-plugin) keeps
    // the record with the call's outcome only; the service always persists.
    if (ctx->options && ctx->options->save_restore) ctx->options->save_restore(text);
    // The final RESTORE output replaces it; until then destroy gets this one.
    ctx->outcome.restore_json = std::move(text);
    return BLADE_STATUS_OK;
  } catch (const Error &e) {
    log::error("write-ahead restore record not stored", {{"error", e.what()}});
    return BLADE_STATUS_FAILED_PRECONDITION;
  } catch (...) {
    return BLADE_STATUS_INTERNAL;
  }
}

uint64_t subscribe(blade_host *host, const char *topic, blade_topic_fn fn, void *ctx) {
  if (!host || !topic || !fn) return 0;
  return HostContext::from(host)->subscribe(topic, fn, ctx);
}

void unsubscribe(blade_host *host, uint64_t id) {
  if (host) HostContext::from(host)->unsubscribe(id);
}

blade_status report_counters(blade_host *host, const char *uid, const char *json, size_t len) {
  if (!host || !uid || (!json && len > 0)) return BLADE_STATUS_INVALID_ARGUMENT;
  return HostContext::from(host)->report_counters(uid, std::string_view(json ? json : "", len));
}

// Set while this thread runs a plugin's topic function: subscribe and
// unsubscribe from there would wait on the lock the delivery holds.
thread_local bool t_in_delivery = false;

std::atomic<std::uint64_t> g_next_owner_id{1};

constexpr blade_host_api kHostApi = {
    sizeof(blade_host_api),
    BLADE_PLUGIN_ABI_MAJOR,
    BLADE_PLUGIN_ABI_MINOR,
    &host_log,
    &host_info,
    &set_output,
    &is_cancelled,
    &remaining_ms,
    &progress,
    &fault_ended,
    &save_restore,
    &subscribe,
    &unsubscribe,
    &report_counters,
};

}  // namespace

HostContext::HostContext(std::string plugin_name, const HostSettings &settings,
                         std::filesystem::path state_dir, std::string config_json)
    : plugin_name_(std::move(plugin_name)),
      host_version_(settings.host_version),
      state_dir_(state_dir.string()),
      protected_paths_(settings.protected_paths),
      config_json_(std::move(config_json)),
      fault_ended_(settings.fault_ended),
      topics_(settings.topics),
      counters_(settings.counters),
      owner_id_(g_next_owner_id.fetch_add(1)) {
  for (const auto &path : protected_paths_)
    protected_path_ptrs_.push_back(path.c_str());
  protected_path_ptrs_.push_back(nullptr);
  info_.struct_size = sizeof(blade_host_info);
  info_.abi_major = BLADE_PLUGIN_ABI_MAJOR;
  info_.abi_minor = BLADE_PLUGIN_ABI_MINOR;
  info_.host_version = host_version_.c_str();
  info_.state_dir = state_dir_.c_str();
  info_.daemon_pid = static_cast<int32_t>(::getpid());
  info_.protected_paths = protected_path_ptrs_.data();
  info_.config_json = config_json_.c_str();
}

void HostContext::fault_ended(const std::string &uid, const std::string &reason) const {
  log::warn("fault ended on its own", {{"plugin", plugin_name_}, {"uid", uid}, {"reason", reason}});
  if (fault_ended_) fault_ended_(plugin_name_, uid, reason);
}

HostContext::~HostContext() {
  end_instance();
}

std::uint64_t HostContext::subscribe(const char *topic, blade_topic_fn fn, void *ctx) {
  if (t_in_delivery) {
    log::error("a plugin subscribed from inside its topic function; refused",
               {{"plugin", plugin_name_}, {"topic", topic}});
    return 0;
  }
  if (!topics_) return 0;
  try {
    auto listener = [fn, ctx](const std::string &name, const TopicHub::Document &doc) {
      if (!doc) return;
      t_in_delivery = true;
      fn(ctx, name.c_str(), doc->data(), doc->size());
      t_in_delivery = false;
    };
    TopicHub::Subscription sub = topics_->subscribe(topic, std::move(listener));
    if (!sub) return 0;
    const std::uint64_t id = sub.id();
    std::lock_guard lock(subscriptions_mutex_);
    subscriptions_.emplace(id, std::move(sub));
    return id;
  } catch (...) {
    return 0;  // out of memory: as good as an unknown topic to the plugin
  }
}

void HostContext::unsubscribe(std::uint64_t id) {
  if (t_in_delivery) {
    log::error("a plugin unsubscribed from inside its topic function; ignored",
               {{"plugin", plugin_name_}, {"subscription", std::to_string(id)}});
    return;
  }
  TopicHub::Subscription ending;
  {
    std::lock_guard lock(subscriptions_mutex_);
    auto it = subscriptions_.find(id);
    if (it == subscriptions_.end()) return;
    ending = std::move(it->second);
    subscriptions_.erase(it);
  }
  // Outside the lock: this waits for a delivery in progress to end.
  ending.reset();
}

blade_status HostContext::report_counters(const char *uid, std::string_view json) {
  try {
    if (!counters_) {
      // Nowhere to show them (a tool, not the daemon): still say whether
      // the daemon would take them.
      return sdk::parse_counters(json).ok() ? BLADE_STATUS_OK : BLADE_STATUS_INVALID_ARGUMENT;
    }
    counters_->report(plugin_name_, owner_id_, uid, json);
    return BLADE_STATUS_OK;
  } catch (const Error &e) {
    // A plugin that keeps sending a bad report would flood the log: say the
    // first refusal, then one in a thousand.
    const std::uint64_t n = counters_refused_.fetch_add(1) + 1;
    if (n == 1 || n % 1000 == 0) {
      log::warn(e.what(), {{"plugin", plugin_name_}, {"refusals", std::to_string(n)}});
    }
    return e.code() == ErrorCode::InvalidArgument ? BLADE_STATUS_INVALID_ARGUMENT
                                                   : BLADE_STATUS_FAILED_PRECONDITION;
  } catch (...) {
    return BLADE_STATUS_INTERNAL;
  }
}

void HostContext::drop_counters(const std::string &uid) {
  if (counters_) counters_->drop(uid);
}

void HostContext::end_instance() {
  std::map<std::uint64_t, TopicHub::Subscription> ending;
  {
    std::lock_guard lock(subscriptions_mutex_);
    ending.swap(subscriptions_);
  }
  ending.clear();  // each waits for its delivery in progress, if any
  if (counters_) counters_->drop_owner(owner_id_);
}

const blade_host_api *HostContext::api() {
  return &kHostApi;
}

}  // namespace blade
