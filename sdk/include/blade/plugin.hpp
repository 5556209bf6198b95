// SPDX-License-Identifier: Apache-2.0
// Blade plugin SDK: the header-only C++ layer over blade/plugin.h.
//
// A plugin is a class and one macro:
//
//   class Marker {
//    public:
//     explicit Marker(blade::sdk::Host host);
//     blade::sdk::Outcome create(const blade::sdk::Request &req, blade::sdk::Call &call);
//     void destroy(const blade::sdk::Request &req, blade::sdk::Call &call);
//     //   (destroy may say what it found: call.report(R"({"restored": true})"))
//     // optional hooks and settings, each read only when the class names it:
//     std::string dry_run(const blade::sdk::Request &req, blade::sdk::Call &call);  // plan JSON
//     static constexpr bool concurrent_calls = true;      // BLADE_CAP_CONCURRENT_CALLS
//     static constexpr bool writes_ahead = true;          // BLADE_CAP_WRITES_AHEAD (1.6)
//     static constexpr std::uint16_t abi_minor = 3;       // lowest host minor needed (default 0)
//     static constexpr const char *config_schema = R"({"type": "object"})";  // ABI 1.3
//   };
//   BLADE_PLUGIN(Marker, "marker", "1.0.0", kMarkerSpecYaml)
//
// The hooks are checked at compile time: a class that names create,
// destroy, dry_run, concurrent_calls, writes_ahead, abi_minor or config_schema with the
// wrong signature or type, or lacks create or destroy, or cannot be built
// from a Host, fails to compile with a static_assert stating the expected
// form. (A mis-typed optional hook is an error, never silently skipped.)
// create and destroy may be inherited, e.g. from blade::sdk::FaultRouter
// (blade/fault_router.hpp), which routes each (target, action) to its own
// class.
//
// ABI 1.5: Host::subscribe follows a document the host publishes (e.g.
// "http.rules") through an RAII TopicSubscription, and
// Host::report_counters publishes an experiment's live counters (their
// rules and a builder are in blade/counters.hpp); both fall back cleanly on
// an older host (NotSupported, false).
//
// The macro emits the entry symbol, the static descriptor and noexcept
// trampolines. Exceptions never cross the ABI: blade::sdk::Error carries its
// status, std::invalid_argument becomes INVALID_ARGUMENT, anything else
// INTERNAL; the message reaches the host through set_output. Only plain C
// data crosses the boundary, so the plugin may use any C++ library and
// standard library version it likes.
#ifndef BLADE_PLUGIN_HPP
#define BLADE_PLUGIN_HPP

#include <blade/plugin.h>

#include <charconv>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace blade::sdk {

// An error with the status the host should see.
class Error : public std::runtime_error {
 public:
  Error(blade_status status, const std::string &message)
      : std::runtime_error(message), status_(status) {}
  blade_status status() const noexcept { return status_; }

 private:
  blade_status status_;
};

#define BLADE_SDK_ERROR_KIND(Name, Status)                    \
  struct Name : Error {                                       \
    explicit Name(const std::string &m) : Error(Status, m) {} \
  };
BLADE_SDK_ERROR_KIND(InvalidArgument, BLADE_STATUS_INVALID_ARGUMENT)
BLADE_SDK_ERROR_KIND(NotSupported, BLADE_STATUS_NOT_SUPPORTED)
BLADE_SDK_ERROR_KIND(PermissionDenied, BLADE_STATUS_PERMISSION_DENIED)
BLADE_SDK_ERROR_KIND(NotFound, BLADE_STATUS_NOT_FOUND)
BLADE_SDK_ERROR_KIND(AlreadyExists, BLADE_STATUS_ALREADY_EXISTS)
BLADE_SDK_ERROR_KIND(FailedPrecondition, BLADE_STATUS_FAILED_PRECONDITION)
BLADE_SDK_ERROR_KIND(Cancelled, BLADE_STATUS_CANCELLED)
#undef BLADE_SDK_ERROR_KIND

// What create hands back: both are JSON texts. restore_json is persisted by
// the host and given to destroy, so it must hold everything destroy needs.
struct Outcome {
  std::string result_json = "{}";
  std::string restore_json = "{}";
};

class Host;

// A topic followed through Host::subscribe (ABI 1.5). Move-only; destroying
// or reset()ting it unsubscribes, and once that returns the function is
// not running and is never called again. End it before whatever the
// function touches goes (declare the subscription after that state).
class TopicSubscription {
 public:
  TopicSubscription() = default;
  TopicSubscription(TopicSubscription &&o) noexcept
      : state_(std::move(o.state_)), id_(std::exchange(o.id_, 0)) {}
  TopicSubscription &operator=(TopicSubscription &&o) noexcept {
    if (this != &o) {
      reset();
      state_ = std::move(o.state_);
      id_ = std::exchange(o.id_, 0);
    }
    return *this;
  }
  TopicSubscription(const TopicSubscription &) = delete;
  TopicSubscription &operator=(const TopicSubscription &) = delete;
  ~TopicSubscription() { reset(); }

  // Unsubscribes; must not be called from inside the subscription's own
  // function (the host waits for that call to end).
  void reset() noexcept {
    if (state_ && id_ != 0) state_->api->unsubscribe(state_->host, id_);
    id_ = 0;
    state_.reset();
  }
  explicit operator bool() const noexcept { return id_ != 0; }
  std::uint64_t id() const noexcept { return id_; }

 private:
  friend class Host;
  // Heap-held so its address, the C callback's ctx, survives moves.
  struct State {
    const blade_host_api *api = nullptr;
    blade_host *host = nullptr;
    std::function<void(std::string_view json)> fn;
  };

  // The blade_topic_fn: runs fn, and keeps its exceptions on this side of
  // the C boundary by logging them through the host.
  static void deliver(void *ctx, const char *topic, const char *json, std::size_t len) noexcept {
    auto *s = static_cast<State *>(ctx);
    const char *why = nullptr;
    std::string what;
    try {
      s->fn(std::string_view(json ? json : "", json ? len : 0));
      return;
    } catch (const std::exception &e) {
      try {
        what = e.what();
      } catch (...) {
      }
      why = what.c_str();
    } catch (...) {
      why = "unknown exception";
    }
    try {
      std::string line = std::string("topic ") + (topic ? topic : "?") +
                         ": the subscriber threw, the document was not taken: " + why;
      s->api->log(s->host, BLADE_LOG_ERROR, line.c_str());
    } catch (...) {
      // Out of memory while reporting: nothing more can be said.
    }
  }

  std::unique_ptr<State> state_;
  std::uint64_t id_ = 0;
};

// The host's services for the instance's whole life. Cheap to copy.
class Host {
 public:
  Host(const blade_host_api *api, blade_host *host) : api_(api), host_(host) {}

  void log(blade_log_level level, const std::string &message) const {
    api_->log(host_, level, message.c_str());
  }
  void info(const std::string &message) const { log(BLADE_LOG_INFO, message); }
  void warn(const std::string &message) const { log(BLADE_LOG_WARN, message); }

  // A directory private to this plugin that survives daemon restarts.
  std::string state_dir() const {
    const blade_host_info *i = api_->host_info(host_);
    return i && i->state_dir ? i->state_dir : "";
  }
  // The fault of experiment `uid` ended on its own (its holder process was
  // killed): the host marks the experiment failed with `reason`. Callable
  // from any thread. A 1.0 host cannot be told; the reason is logged then.
  void fault_ended(const std::string &uid, const std::string &reason) const {
    if (BLADE_HAS_FUNC(api_, fault_ended)) {
      api_->fault_ended(host_, uid.c_str(), reason.c_str());
    } else {
      warn("experiment " + uid + ": fault ended on its own: " + reason);
    }
  }
  int daemon_pid() const {
    const blade_host_info *i = api_->host_info(host_);
    return i ? i->daemon_pid : 0;
  }
  // Paths the daemon lives on (its database, state and plugin dirs): never a
  // fault's target. Empty from a 1.1 host, which does not say.
  std::vector<std::string> protected_paths() const {
    std::vector<std::string> out;
    const blade_host_info *i = api_->host_info(host_);
    if (!i || !BLADE_HAS_MEMBER(i, protected_paths) || !i->protected_paths) return out;
    for (const char *const *p = i->protected_paths; *p; ++p)
      out.emplace_back(*p);
    return out;
  }
  // This plugin's section of the daemon's configuration file as a JSON
  // object, already validated by the host against the class's
  // config_schema. "{}" when the section is absent, and from a host older
  // than ABI 1.3 (which has no configuration to give).
  std::string config_json() const {
    const blade_host_info *i = api_->host_info(host_);
    if (!i || !BLADE_HAS_MEMBER(i, config_json) || !i->config_json) return "{}";
    return i->config_json;
  }
  // Follows the host's document `topic` (ABI 1.5), e.g. "http.rules" (the
  // compiled HTTP fault rule set). `fn` gets the current document before
  // subscribe returns, then each new one whole, on a host thread: calls
  // never overlap and come in order. It must return quickly (parse or swap
  // a pointer, never block) and must not subscribe or unsubscribe; what it
  // throws is logged through the host, and the document is then lost to
  // it. Throws NotSupported when the host is older than ABI 1.5 or does
  // not know the topic: a fault that needs it fails with that status.
  TopicSubscription subscribe(std::string topic, std::function<void(std::string_view json)> fn) const {
    if (!BLADE_HAS_FUNC(api_, subscribe) || !BLADE_HAS_FUNC(api_, unsubscribe)) {
      throw NotSupported("following topic '" + topic + "' needs a host with plugin ABI 1.5; this " +
                         "host has ABI " + std::to_string(api_->abi_major) + "." +
                         std::to_string(api_->abi_minor));
    }
    TopicSubscription sub;
    sub.state_ = std::make_unique<TopicSubscription::State>();
    sub.state_->api = api_;
    sub.state_->host = host_;
    sub.state_->fn = std::move(fn);
    sub.id_ = api_->subscribe(host_, topic.c_str(), &TopicSubscription::deliver, sub.state_.get());
    if (sub.id_ == 0) throw NotSupported("this host does not publish topic '" + topic + "'");
    return sub;
  }
  // Publishes experiment `uid`'s live counters (ABI 1.5): a JSON object as
  // blade/counters.hpp describes (counters_json() builds one). The host
  // shows them in its metrics and with the experiment until the
  // experiment's destroy returns; each call replaces the last. Any plugin
  // thread may call it. False when the host refused the text (its last
  // good report stands) or is older than ABI 1.5 (nothing is shown).
  bool report_counters(std::string_view uid, std::string_view json) const {
    if (!BLADE_HAS_FUNC(api_, report_counters)) return false;
    const std::string id(uid);
    return api_->report_counters(host_, id.c_str(), json.data(), json.size()) == BLADE_STATUS_OK;
  }
  // The C table and handle, for a call the C++ layer does not wrap.
  const blade_host_api *api() const { return api_; }
  blade_host *handle() const { return host_; }

 private:
  const blade_host_api *api_;
  blade_host *host_;
};

// The services scoped to one call: cancellation, deadline, progress, and
// (destroy only) the destroy's report.
class Call {
 public:
  enum class Kind { Create, Destroy, DryRun, Other };
  Call(const blade_host_api *api, blade_call *call, Kind kind = Kind::Other)
      : api_(api), call_(call), kind_(kind) {}

  bool cancelled() const { return api_->is_cancelled(call_) != 0; }
  std::int64_t remaining_ms() const { return api_->remaining_ms(call_); }
  void progress(int percent, const std::string &note = {}) const {
    api_->progress(call_, percent, note.empty() ? nullptr : note.c_str());
  }
  // Throws Cancelled when the host wants the call to stop; call it in loops.
  void check() const {
    if (cancelled()) throw Cancelled("cancelled by the host");
  }
  // Write-ahead restore record (create only): call BEFORE each irreversible
  // step with a record destroy can undo every step so far plus this one
  // from. Returns once the record is durable; throws (and the step must not
  // be taken) when the host could not store it. A 1.1 host stores the record
  // only when create returns: then this does nothing.
  void save_restore(std::string_view json) const {
    if (!BLADE_HAS_FUNC(api_, save_restore)) return;
    blade_status s = api_->save_restore(call_, json.data(), json.size());
    if (s != BLADE_STATUS_OK) {
      throw Error(s == BLADE_STATUS_INVALID_ARGUMENT ? BLADE_STATUS_INTERNAL : s,
                  "the restore record could not be stored ahead of the change, so nothing "
                  "more was changed");
    }
  }
  // destroy only: the destroy's report, a JSON object saying what it found
  // and did, e.g. {"restored": false, "left_alone": "<why>"} when something
  // found in the fault's place was kept. bladed stores it with the
  // experiment (`destroy_result` in the API) apart from create's result.
  // Sent at once; a later report replaces it, and it stands also when
  // destroy then throws. Returns false when the host refused it (not a JSON
  // object); the destroy's status is not changed by that. A host older than
  // ABI 1.4 takes a JSON report and ignores it, so no minor check is needed.
  // Throws std::logic_error outside destroy: create's result is its
  // Outcome::result_json, a dry run's its plan.
  bool report(std::string_view json_object) const {
    if (kind_ != Kind::Destroy)
      throw std::logic_error("Call::report is for destroy only; create returns its result");
    return api_->set_output(call_, BLADE_OUTPUT_RESULT, json_object.data(), json_object.size()) ==
           BLADE_STATUS_OK;
  }

 private:
  const blade_host_api *api_;
  blade_call *call_;
  Kind kind_;
};

// A borrowed view of a blade_request. Flags were validated by the host
// against the spec, so typed accessors only fail on a plugin's own misuse.
class Request {
 public:
  explicit Request(const blade_request *r) : r_(r) {}

  std::string_view uid() const { return r_->uid; }
  std::string_view scope() const { return r_->scope; }
  std::string_view target() const { return r_->target; }
  std::string_view action() const { return r_->action; }
  std::size_t flag_count() const { return r_->flag_count; }
  std::string_view flag_name(std::size_t i) const { return r_->flag_names[i]; }
  std::string_view flag_value(std::size_t i) const { return r_->flag_values[i]; }

  std::optional<std::string_view> flag(std::string_view name) const {
    for (std::uint32_t i = 0; i < r_->flag_count; ++i)
      if (name == r_->flag_names[i]) return std::string_view(r_->flag_values[i]);
    return std::nullopt;
  }
  std::string flag_or(std::string_view name, std::string_view fallback) const {
    return std::string(flag(name).value_or(fallback));
  }
  bool flag_bool(std::string_view name) const { return flag(name).value_or("false") == "true"; }
  std::int64_t flag_int(std::string_view name, std::int64_t fallback) const {
    auto v = flag(name);
    if (!v || v->empty()) return fallback;
    std::int64_t out = 0;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
    if (ec != std::errc() || end != v->data() + v->size())
      throw InvalidArgument("flag " + std::string(name) + " is not an integer: " + std::string(*v));
    return out;
  }
  // The restore record of the matching create (destroy only).
  std::optional<std::string_view> restore_json() const {
    if (!r_->restore_json) return std::nullopt;
    return std::string_view(r_->restore_json);
  }

 private:
  const blade_request *r_;
};

namespace detail {

template <class P>
struct Instance {
  const blade_host_api *api;
  P plugin;
  Instance(const blade_host_api *a, blade_host *h) : api(a), plugin(Host(a, h)) {}
};

inline void set_text(const blade_host_api *api, blade_call *call, blade_output_field field,
                     std::string_view text) noexcept {
  if (api && api->set_output) api->set_output(call, field, text.data(), text.size());
}

// Runs `body`, turning every exception into a status and a MESSAGE output.
template <class F>
blade_status guarded(const blade_host_api *api, blade_call *call, F &&body) noexcept {
  try {
    body();
    return BLADE_STATUS_OK;
  } catch (const Error &e) {
    set_text(api, call, BLADE_OUTPUT_MESSAGE, e.what());
    return e.status();
  } catch (const std::invalid_argument &e) {
    set_text(api, call, BLADE_OUTPUT_MESSAGE, e.what());
    return BLADE_STATUS_INVALID_ARGUMENT;
  } catch (const std::exception &e) {
    set_text(api, call, BLADE_OUTPUT_MESSAGE, e.what());
    return BLADE_STATUS_INTERNAL;
  } catch (...) {
    set_text(api, call, BLADE_OUTPUT_MESSAGE, "unknown exception in plugin");
    return BLADE_STATUS_INTERNAL;
  }
}

template <class P>
Instance<P> *self(blade_instance *i) noexcept {
  return reinterpret_cast<Instance<P> *>(i);
}

template <class P>
blade_status init(const blade_host_api *api, blade_host *host, blade_call *call,
                  blade_instance **out) noexcept {
  if (out) *out = nullptr;
  return guarded(api, call, [&] {
    auto *inst = new Instance<P>(api, host);
    *out = reinterpret_cast<blade_instance *>(inst);
  });
}

template <class P>
void shutdown(blade_instance *i) noexcept {
  try {
    delete self<P>(i);
  } catch (...) {
    // A destructor that throws must not take the daemon down.
  }
}

template <class P>
blade_status create(blade_instance *i, const blade_request *r, blade_call *c) noexcept {
  auto *inst = self<P>(i);
  return guarded(inst->api, c, [&] {
    Call call(inst->api, c, Call::Kind::Create);
    Outcome out = inst->plugin.create(Request(r), call);
    set_text(inst->api, c, BLADE_OUTPUT_RESULT, out.result_json);
    set_text(inst->api, c, BLADE_OUTPUT_RESTORE, out.restore_json);
  });
}

template <class P>
blade_status destroy(blade_instance *i, const blade_request *r, blade_call *c) noexcept {
  auto *inst = self<P>(i);
  return guarded(inst->api, c, [&] {
    Call call(inst->api, c, Call::Kind::Destroy);
    inst->plugin.destroy(Request(r), call);
  });
}

template <class P>
blade_status dry_run(blade_instance *i, const blade_request *r, blade_call *c) noexcept {
  auto *inst = self<P>(i);
  return guarded(inst->api, c, [&] {
    Call call(inst->api, c, Call::Kind::DryRun);
    std::string plan = inst->plugin.dry_run(Request(r), call);
    set_text(inst->api, c, BLADE_OUTPUT_PLAN, plan);
  });
}

// --- Compile-time checks of the plugin class ------------------------------
//
// "P names a member x" is tested apart from "x has the expected form", so a
// hook with a wrong signature is a compile error stating the expected one
// instead of being taken for an absent optional hook. &P::x finds a single
// member (also an inherited one) but is ill-formed for an overloaded or
// template member, so the name is also looked up in a class deriving from
// both P and a probe holding the same name: that lookup is ambiguous
// exactly when P has the name (whatever its kind or access). A final class
// cannot be derived from; there only the &P::x test applies.
// This clang-format splits concept definitions apart.
// clang-format off
#define BLADE_SDK_NAME_PROBE(x)                                                 \
  struct Probe_##x {                                                            \
    int x;                                                                      \
  };                                                                            \
  template <class P>                                                            \
  struct Derived_##x : P, Probe_##x {};                                         \
  template <class P>                                                            \
  concept Names_##x = requires { &P::x; } || (std::is_class_v<P> && !std::is_final_v<P> && \
                                              !requires { &Derived_##x<P>::x; });
BLADE_SDK_NAME_PROBE(create)
BLADE_SDK_NAME_PROBE(destroy)
BLADE_SDK_NAME_PROBE(dry_run)
BLADE_SDK_NAME_PROBE(concurrent_calls)
BLADE_SDK_NAME_PROBE(writes_ahead)
BLADE_SDK_NAME_PROBE(abi_minor)
BLADE_SDK_NAME_PROBE(config_schema)
#undef BLADE_SDK_NAME_PROBE

// The expected forms. Hooks are called on a non-const instance with a
// const Request & and a Call &, so a const member function, a template or
// parameters those convert to are accepted; a non-void destroy is not (a
// status returned from it would be silently dropped: throw instead).
template <class P>
concept CreateOk = requires(P &p, const Request &r, Call &c) {
  { p.create(r, c) } -> std::convertible_to<Outcome>;
};
template <class P>
concept DestroyOk = requires(P &p, const Request &r, Call &c) {
  { p.destroy(r, c) } -> std::same_as<void>;
};
template <class P>
concept DryRunOk = requires(P &p, const Request &r, Call &c) {
  { p.dry_run(r, c) } -> std::convertible_to<std::string>;
};
template <class P>
concept ConcurrentCallsOk = std::same_as<std::remove_cv_t<decltype(P::concurrent_calls)>, bool> &&
                            requires { typename std::bool_constant<P::concurrent_calls>; };
template <class P>
concept WritesAheadOk = std::same_as<std::remove_cv_t<decltype(P::writes_ahead)>, bool> &&
                        requires { typename std::bool_constant<P::writes_ahead>; };
template <class P>
concept AbiMinorOk = std::integral<std::remove_cv_t<decltype(P::abi_minor)>> &&
                     !std::same_as<std::remove_cv_t<decltype(P::abi_minor)>, bool> &&
                     requires {
                       typename std::integral_constant<std::remove_cv_t<decltype(P::abi_minor)>,
                                                       P::abi_minor>;
                     };
template <class P>
concept ConfigSchemaOk = std::convertible_to<decltype(P::config_schema), const char *> &&
                         requires { typename std::bool_constant<P::config_schema != nullptr>; };

// Every check with its message; true when the class is usable. Each hook
// is checked only when named, so one mistake gives one message.
template <class P>
consteval bool check_plugin_class() {
  static_assert(std::constructible_from<P, Host>,
                "the plugin class must be constructible from the host: "
                "explicit Class(blade::sdk::Host host)");
  static_assert(Names_create<P>,
                "the plugin class has no create; it must have: blade::sdk::Outcome "
                "create(const blade::sdk::Request &, blade::sdk::Call &)");
  static_assert(!Names_create<P> || CreateOk<P>,
                "create must be: blade::sdk::Outcome create(const blade::sdk::Request &, "
                "blade::sdk::Call &)");
  static_assert(Names_destroy<P>,
                "the plugin class has no destroy; it must have: void destroy(const "
                "blade::sdk::Request &, blade::sdk::Call &)");
  static_assert(!Names_destroy<P> || DestroyOk<P>,
                "destroy must be: void destroy(const blade::sdk::Request &, blade::sdk::Call &)");
  static_assert(!Names_dry_run<P> || DryRunOk<P>,
                "dry_run must be: std::string dry_run(const blade::sdk::Request &, "
                "blade::sdk::Call &)");
  static_assert(!Names_concurrent_calls<P> || ConcurrentCallsOk<P>,
                "concurrent_calls must be: static constexpr bool concurrent_calls = true;");
  static_assert(!Names_writes_ahead<P> || WritesAheadOk<P>,
                "writes_ahead must be: static constexpr bool writes_ahead = true;");
  static_assert(!Names_abi_minor<P> || AbiMinorOk<P>,
                "abi_minor must be: static constexpr std::uint16_t abi_minor = N;");
  static_assert(!Names_config_schema<P> || ConfigSchemaOk<P>,
                "config_schema must be: static constexpr const char *config_schema = "
                "R\"({...JSON Schema...})\";");
  return std::constructible_from<P, Host> && CreateOk<P> && DestroyOk<P> &&
         (!Names_dry_run<P> || DryRunOk<P>) &&
         (!Names_concurrent_calls<P> || ConcurrentCallsOk<P>) &&
         (!Names_writes_ahead<P> || WritesAheadOk<P>) &&
         (!Names_abi_minor<P> || AbiMinorOk<P>) && (!Names_config_schema<P> || ConfigSchemaOk<P>);
}
// clang-format on

// The lowest host minor the plugin needs: its abi_minor, 0 when it names
// none (the layer itself checks every newer host field before use).
template <class P>
consteval std::uint16_t plugin_abi_minor() {
  if constexpr (Names_abi_minor<P> && AbiMinorOk<P>) {
    // std::cmp_*: abi_minor may be of any integer type, signed or not.
    static_assert(std::cmp_greater_equal(P::abi_minor, 0), "abi_minor must not be negative");
    static_assert(std::cmp_less_equal(P::abi_minor, BLADE_PLUGIN_ABI_MINOR),
                  "abi_minor is above BLADE_PLUGIN_ABI_MINOR of this SDK header: a plugin "
                  "cannot need host features its own SDK does not know; build against a "
                  "newer SDK");
    return static_cast<std::uint16_t>(P::abi_minor);
  } else {
    return 0;
  }
}

template <class P>
constexpr blade_plugin_descriptor make_descriptor(const char *name, const char *version,
                                                  const char *spec_yaml) {
  blade_plugin_descriptor d{};
  d.struct_size = sizeof(blade_plugin_descriptor);
  d.abi_major = BLADE_PLUGIN_ABI_MAJOR;
  d.name = name;
  d.version = version;
  d.spec_yaml = spec_yaml;
  d.capabilities = 0;
  d.dry_run = nullptr;
  d.config_schema = nullptr;
  // Only a class that passed every check gets trampolines: instantiating
  // them for a broken class would bury the static_assert under errors.
  constexpr bool usable = check_plugin_class<P>();
  if constexpr (usable) {
    d.abi_minor = plugin_abi_minor<P>();
    d.init = &init<P>;
    d.shutdown = &shutdown<P>;
    d.create = &create<P>;
    d.destroy = &destroy<P>;
    if constexpr (Names_dry_run<P>) {
      d.capabilities |= BLADE_CAP_DRY_RUN;
      d.dry_run = &dry_run<P>;
    }
    if constexpr (Names_concurrent_calls<P>) {
      if constexpr (P::concurrent_calls) d.capabilities |= BLADE_CAP_CONCURRENT_CALLS;
    }
    if constexpr (Names_writes_ahead<P>) {
      if constexpr (P::writes_ahead) d.capabilities |= BLADE_CAP_WRITES_AHEAD;
    }
    if constexpr (Names_config_schema<P>) d.config_schema = P::config_schema;
  }
  return d;
}

}  // namespace detail

// Escapes `s` as a JSON string literal (with the quotes), for plugins that
// build small JSON outputs by hand.
inline std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          static const char hex[] = "0123456789abcdef";
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xf];
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

}  // namespace blade::sdk

// Emits the plugin's entry symbol for class `Class`. `spec_yaml` must be a
// string with static storage (a literal or a global array).
#define BLADE_PLUGIN(Class, name, version, spec_yaml)                                  \
  extern "C" BLADE_PLUGIN_EXPORT const blade_plugin_descriptor *BLADE_PLUGIN_ENTRY() { \
    static const blade_plugin_descriptor descriptor =                                  \
        ::blade::sdk::detail::make_descriptor<Class>(name, version, spec_yaml);        \
    return &descriptor;                                                                \
  }

#endif  // BLADE_PLUGIN_HPP
