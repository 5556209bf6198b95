#include "inner_host.hpp"

#include <unistd.h>

#include <cstdint>
#include <limits>

#include <nlohmann/json.hpp>

#include "enter.hpp"

namespace blade::cri {

using nlohmann::json;

namespace {

InnerHost &host_of(blade_host *h) { return *reinterpret_cast<InnerHost *>(h); }
InnerCall &call_of(blade_call *c) { return *reinterpret_cast<InnerCall *>(c); }

const char *level_name(blade_log_level level) {
  switch (level) {
    case BLADE_LOG_DEBUG:
      return "debug";
    case BLADE_LOG_WARN:
      return "warn";
    case BLADE_LOG_ERROR:
      return "error";
    default:
      return "info";
  }
}

void log(blade_host *h, blade_log_level level, const char *message) {
  host_of(h).channel().log(level_name(level), message ? message : "");
}

const blade_host_info *host_info(blade_host *h) { return host_of(h).info(); }

blade_status set_output(blade_call *c, blade_output_field field, const char *data,
                        std::size_t len) {
  InnerCall &call = call_of(c);
  std::string text(data ? data : "", data ? len : 0);
  switch (field) {
    case BLADE_OUTPUT_RESULT:
      if (call.kind == sdk::Call::Kind::Destroy) {
        // A destroy's report stands even when the destroy then fails, so
        // it goes to the plugin at once.
        const json report = json::parse(text, nullptr, false);
        if (!report.is_object()) return BLADE_STATUS_INVALID_ARGUMENT;
        call.channel->send({{"type", "report"}, {"report", report}});
      }
      call.result = std::move(text);
      return BLADE_STATUS_OK;
    case BLADE_OUTPUT_RESTORE:
      call.restore = std::move(text);
      return BLADE_STATUS_OK;
    case BLADE_OUTPUT_MESSAGE:
      call.message = std::move(text);
      return BLADE_STATUS_OK;
    case BLADE_OUTPUT_PLAN:
      call.plan = std::move(text);
      return BLADE_STATUS_OK;
  }
  return BLADE_STATUS_INVALID_ARGUMENT;
}

std::int64_t remaining_ms(blade_call *c) {
  const InnerCall &call = call_of(c);
  if (!call.deadline) return std::numeric_limits<std::int64_t>::max();
  return std::chrono::duration_cast<std::chrono::milliseconds>(*call.deadline -
                                                               std::chrono::steady_clock::now())
      .count();
}

// The plugin stops a cancelled call by killing the helper; what is left to
// see here is the deadline.
int is_cancelled(blade_call *c) { return remaining_ms(c) <= 0 ? 1 : 0; }

void progress(blade_call *c, std::int32_t percent, const char *note) {
  call_of(c).channel->send({{"type", "progress"}, {"percent", percent}, {"note", note ? note : ""}});
}

void fault_ended(blade_host *h, const char *uid, const char *reason) {
  host_of(h).channel().send(
      {{"type", "fault_ended"}, {"uid", uid ? uid : ""}, {"reason", reason ? reason : ""}});
}

// The record goes to the plugin, which stores the outer record around it
// and answers; the step waits for that answer.
blade_status save_restore(blade_call *c, const char *data, std::size_t len) {
  if (call_of(c).kind != sdk::Call::Kind::Create) return BLADE_STATUS_FAILED_PRECONDITION;
  const json record = json::parse(std::string(data ? data : "", data ? len : 0), nullptr, false);
  if (record.is_discarded()) return BLADE_STATUS_INVALID_ARGUMENT;
  Channel &ch = *call_of(c).channel;
  if (!ch.send({{"type", "save_restore"}, {"record", record}})) return BLADE_STATUS_INTERNAL;
  for (;;) {
    std::optional<std::string> line;
    try {
      line = ch.read_line();
    } catch (const std::length_error &) {
      return BLADE_STATUS_INTERNAL;
    }
    if (!line) return BLADE_STATUS_INTERNAL;  // the plugin is gone: take no step
    const json ack = json::parse(*line, nullptr, false);
    if (!ack.is_object() || ack.find("type") == ack.end() || ack["type"] != "ack") continue;
    if (ack.find("ok") != ack.end() && ack["ok"] == true) return BLADE_STATUS_OK;
    const auto why = ack.find("error");
    ch.log("warn", "the plugin could not store the record: " +
                       (why != ack.end() && why->is_string() ? why->get<std::string>() : "?"));
    return BLADE_STATUS_FAILED_PRECONDITION;
  }
}

}  // namespace

InnerHost::InnerHost(Channel &channel, std::string config_json)
    : channel_(channel), config_(std::move(config_json)) {
  info_.struct_size = sizeof info_;
  info_.abi_major = BLADE_PLUGIN_ABI_MAJOR;
  info_.abi_minor = BLADE_PLUGIN_ABI_MINOR;
  info_.host_version = "blade-cri-helper";
  info_.state_dir = kInnerStateDir;
  info_.daemon_pid = static_cast<std::int32_t>(::getpid());
  info_.protected_paths = no_paths_;
  info_.config_json = config_.c_str();

  api_.struct_size = sizeof api_;
  api_.abi_major = BLADE_PLUGIN_ABI_MAJOR;
  api_.abi_minor = BLADE_PLUGIN_ABI_MINOR;
  api_.log = &log;
  api_.host_info = &host_info;
  api_.set_output = &set_output;
  api_.is_cancelled = &is_cancelled;
  api_.remaining_ms = &remaining_ms;
  api_.progress = &progress;
  api_.fault_ended = &fault_ended;
  api_.save_restore = &save_restore;
  // subscribe, unsubscribe, report_counters: NULL (no topics, no counters
  // in a container), which the SDK reads as an older host.
}

}  // namespace blade::cri
