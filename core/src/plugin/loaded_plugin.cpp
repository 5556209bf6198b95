#include "blade/core/plugin/loaded_plugin.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <system_error>

#include <fmt/format.h>

#include "blade/core/model/log.hpp"
#include "blade/core/plugin/crash_record.hpp"
#include "blade/core/plugin/plugin_record.hpp"
#include "host_context.hpp"
#include "plugin_library.hpp"

namespace blade {

std::string_view plugin_status_name(int status) {
  switch (status) {
    case BLADE_STATUS_OK:
      return "OK";
    case BLADE_STATUS_INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case BLADE_STATUS_NOT_SUPPORTED:
      return "NOT_SUPPORTED";
    case BLADE_STATUS_PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case BLADE_STATUS_TIMEOUT:
      return "TIMEOUT";
    case BLADE_STATUS_CANCELLED:
      return "CANCELLED";
    case BLADE_STATUS_NOT_FOUND:
      return "NOT_FOUND";
    case BLADE_STATUS_ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case BLADE_STATUS_FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    default:
      return "INTERNAL";
  }
}

namespace {

// Unknown statuses from a newer or buggy plugin read as INTERNAL (ABI rule 8).
int normalise_status(int status) {
  return status >= BLADE_STATUS_OK && status <= BLADE_STATUS_INTERNAL ? status
                                                                      : BLADE_STATUS_INTERNAL;
}

// Views of the request that live for the duration of one call.
struct RequestView {
  std::vector<const char *> names;
  std::vector<const char *> values;
  blade_request raw{};

  explicit RequestView(const PluginRequest &r) {
    for (const auto &[name, value] : r.flags) {
      names.push_back(name.c_str());
      values.push_back(value.c_str());
    }
    raw.struct_size = sizeof(blade_request);
    raw.flag_count = static_cast<uint32_t>(names.size());
    raw.uid = r.uid.c_str();
    raw.scope = r.scope.c_str();
    raw.target = r.target.c_str();
    raw.action = r.action.c_str();
    raw.flag_names = names.data();
    raw.flag_values = values.data();
    raw.restore_json = r.restore_json ? r.restore_json->c_str() : nullptr;
  }
};

}  // namespace

std::string file_identity(const std::filesystem::path &file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return {};
  return fmt::format("{}:{}:{}:{}.{}", st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec,
                     st.st_mtim.tv_nsec);
}

std::shared_ptr<LoadedPlugin> make_loaded_plugin(std::unique_ptr<PluginLibrary> library,
                                                 PluginSpec spec, const HostSettings &settings,
                                                 PluginConfig config) {
  const blade_plugin_descriptor &d = library->descriptor();
  std::shared_ptr<LoadedPlugin> p(new LoadedPlugin());
  p->name_ = d.name;
  p->version_ = d.version;
  p->path_ = library->path();
  p->file_id_ = file_identity(p->path_);
  p->spec_yaml_ = d.spec_yaml;
  p->spec_ = std::move(spec);
  p->capabilities_ = d.capabilities;
  p->descriptor_ = &d;
  p->configured_ = config.configured;
  p->config_schema_ = std::move(config.schema_json);
  p->config_json_ = std::move(config.config_json);

  std::filesystem::path state_dir = settings.state_root / p->name_;
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) {
    throw PluginRefused(
        fmt::format("cannot create state dir {}: {}", state_dir.string(), ec.message()), p->name_);
  }
  p->host_ = std::make_unique<HostContext>(p->name_, settings, state_dir, p->config_json_);

  CallOptions options;
  CallContext ctx;
  ctx.options = &options;
  blade_instance *instance = nullptr;
  int status =
      normalise_status(d.init(HostContext::api(), p->host_->handle(), ctx.handle(), &instance));
  if (status != BLADE_STATUS_OK || !instance) {
    std::string why = ctx.outcome.message.empty() ? "no message" : ctx.outcome.message;
    if (status == BLADE_STATUS_OK) why = "init returned OK but no instance";
    throw PluginRefused(fmt::format("init failed ({}): {}", plugin_status_name(status), why),
                        p->name_);
  }
  p->instance_ = instance;
  p->library_ = std::move(library);
  return p;
}

LoadedPlugin::~LoadedPlugin() {
  if (descriptor_ && instance_) {
    descriptor_->shutdown(static_cast<blade_instance *>(instance_));
  }
  // The ABI's promise: subscriptions still open end once shutdown returned
  // (before the library's code goes), and what it counted goes with it.
  if (host_) host_->end_instance();
  // host_ and library_ go after this body, library last (declared first).
}

std::string LoadedPlugin::abi() const {
  return fmt::format("{}.{}", descriptor_->abi_major, descriptor_->abi_minor);
}

bool LoadedPlugin::has_dry_run() const {
  return descriptor_->dry_run != nullptr;
}

bool LoadedPlugin::writes_ahead() const {
  return (capabilities_ & BLADE_CAP_WRITES_AHEAD) != 0;
}

CallOutcome LoadedPlugin::create(const PluginRequest &request, const CallOptions &options) {
  return call(Op::Create, request, options);
}

CallOutcome LoadedPlugin::destroy(const PluginRequest &request, const CallOptions &options) {
  return call(Op::Destroy, request, options);
}

CallOutcome LoadedPlugin::dry_run(const PluginRequest &request, const CallOptions &options) {
  if (!has_dry_run()) {
    CallOutcome out;
    out.status = BLADE_STATUS_NOT_SUPPORTED;
    out.message = fmt::format("plugin '{}' does not support dry run", name_);
    return out;
  }
  return call(Op::DryRun, request, options);
}

CallOutcome LoadedPlugin::call(Op op, const PluginRequest &request, const CallOptions &options) {
  RequestView view(request);
  CallContext ctx;
  ctx.options = &options;
  ctx.in_create = op == Op::Create;
  ctx.in_destroy = op == Op::Destroy;
  auto *inst = static_cast<blade_instance *>(instance_);
  // Names this call in a crash line (and record) if the plugin kills us.
  static constexpr std::string_view kOpNames[] = {"create", "destroy", "dry_run"};
  PluginCallMark mark(name_, kOpNames[static_cast<int>(op)], request.uid);
  auto invoke = [&] {
    switch (op) {
      case Op::Create:
        return descriptor_->create(inst, &view.raw, ctx.handle());
      case Op::Destroy:
        return descriptor_->destroy(inst, &view.raw, ctx.handle());
      case Op::DryRun:
        return descriptor_->dry_run(inst, &view.raw, ctx.handle());
    }
    return BLADE_STATUS_INTERNAL;
  };
  int status;
  if (capabilities_ & BLADE_CAP_CONCURRENT_CALLS) {
    status = invoke();
  } else {
    std::lock_guard lock(call_mutex_);
    status = invoke();
  }
  ctx.outcome.status = normalise_status(status);
  if (ctx.report_refused) {
    log::warn("a destroy report that is not a JSON object was dropped",
              {{"plugin", name_}, {"uid", request.uid}});
  }
  if (ctx.outcome.ok() && !ctx.invalid_outputs.empty()) {
    // A record we cannot parse is a record we cannot restore from, so the
    // create is a failure; the fault is in effect though, so undo it now
    // with what destroy can work from (the flags and any record written
    // ahead) rather than leave it.
    if (op == Op::Create) {
      CallContext undo;
      undo.options = &options;
      PluginRequest undo_request;
      undo_request.uid = request.uid;
      undo_request.scope = request.scope;
      undo_request.target = request.target;
      undo_request.action = request.action;
      undo_request.flags = request.flags;
      if (!ctx.outcome.restore_json.empty()) undo_request.restore_json = ctx.outcome.restore_json;
      RequestView undo_view(undo_request);
      std::unique_lock lock(call_mutex_, std::defer_lock);
      if (!(capabilities_ & BLADE_CAP_CONCURRENT_CALLS)) lock.lock();
      descriptor_->destroy(inst, &undo_view.raw, undo.handle());
    }
    ctx.outcome.status = BLADE_STATUS_INTERNAL;
    ctx.outcome.message = fmt::format("plugin '{}' returned invalid JSON for {}", name_,
                                      fmt::join(ctx.invalid_outputs, ", "));
  }
  // Live counters (ABI 1.5) go with a fault that is gone: after a destroy
  // that succeeded (a failed one is retried, and what it counts may still
  // run) and after a create that failed (it leaves nothing running).
  if ((op == Op::Destroy && ctx.outcome.ok()) || (op == Op::Create && !ctx.outcome.ok()))
    host_->drop_counters(request.uid);
  if (!ctx.outcome.ok() && ctx.outcome.message.empty()) {
    ctx.outcome.message =
        fmt::format("plugin '{}' failed with {}", name_, plugin_status_name(ctx.outcome.status));
  }
  return std::move(ctx.outcome);
}

}  // namespace blade
