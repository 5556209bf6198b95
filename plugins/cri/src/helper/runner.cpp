#include "runner.hpp"

#include <unistd.h>

#include <string>
#include <vector>

#include <blade/fault_router.hpp>
#include <blade/plugin.hpp>
#include <nlohmann/json.hpp>

#include "../../../common/shared_faults.hpp"
#include "inner_host.hpp"

namespace blade::cri {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// Every fault family of the host plugins on one router.
class InnerFaults : public sdk::FaultRouter {
 public:
  explicit InnerFaults(sdk::Host host) : FaultRouter("cri") {
    os::register_os_faults(*this, host);
    disk::register_disk_faults(*this, host);
    network::register_network_faults(*this, host);
  }
};

// The descriptor BLADE_PLUGIN would make for it: its trampolines map the
// faults' exceptions (sdk::Error kinds, std::invalid_argument, anything
// else) to a status and a MESSAGE exactly as in os.so, disk.so and
// network.so, so a fault fails the same way on the host and in a container.
const blade_plugin_descriptor &inner_descriptor() {
  static const blade_plugin_descriptor d =
      sdk::detail::make_descriptor<InnerFaults>("cri-inner", "0", "");
  return d;
}

// A blade_request over a HelperRequest's strings (which outlive it).
class InnerRequest {
 public:
  InnerRequest(const HelperRequest &req, const std::optional<std::string> &restore)
      : restore_(restore) {
    for (const auto &[name, value] : req.flags) {
      names_.push_back(name.c_str());
      values_.push_back(value.c_str());
    }
    r_.struct_size = sizeof r_;
    r_.flag_count = static_cast<std::uint32_t>(names_.size());
    r_.uid = req.uid.c_str();
    // Inside the container the faults act on what they see as their host.
    r_.scope = "host";
    r_.target = req.target.c_str();
    r_.action = req.action.c_str();
    r_.flag_names = names_.data();
    r_.flag_values = values_.data();
    r_.restore_json = restore_ ? restore_->c_str() : nullptr;
  }
  InnerRequest(const InnerRequest &) = delete;
  InnerRequest &operator=(const InnerRequest &) = delete;
  const blade_request *get() const { return &r_; }

 private:
  std::optional<std::string> restore_;
  std::vector<const char *> names_, values_;
  blade_request r_{};
};

// An output as JSON for done (null when the call set none).
json output(const std::optional<std::string> &text) {
  if (!text) return nullptr;
  json j = json::parse(*text, nullptr, false);
  return j.is_discarded() ? json(*text) : j;
}

std::string message_of(const InnerCall &call, blade_status s) {
  if (call.message) return *call.message;
  return s == BLADE_STATUS_OK ? std::string() : "failed with status " + std::to_string(s);
}

std::optional<Clock::time_point> deadline_in(const json &m) {
  const auto it = m.find("deadline_ms");
  if (it == m.end() || !it->is_number_integer() || it->get<std::int64_t>() <= 0) return std::nullopt;
  const std::int64_t ms = it->get<std::int64_t>();
  return Clock::now() + std::chrono::milliseconds(ms);
}

// After a create: waits for the plugin's destroy on the same instance.
int hold(Channel &channel, const HelperRequest &req, blade_instance *inst,
         const std::optional<std::string> &restore) {
  const blade_plugin_descriptor &d = inner_descriptor();
  for (;;) {
    std::optional<std::string> line;
    try {
      line = channel.read_line();
    } catch (const std::length_error &) {
      ::_exit(1);
    }
    // The plugin is gone (the daemon stopped or died): so is the fault
    // held here, at once and without unwinding.
    if (!line) ::_exit(0);
    const json m = json::parse(*line, nullptr, false);
    if (!m.is_object() || m.find("op") == m.end() || m["op"] != "destroy") {
      channel.log("warn", "blade-cri-helper holds a fault and takes only {\"op\":\"destroy\"}");
      continue;
    }
    InnerRequest r(req, restore);
    InnerCall call{&channel, sdk::Call::Kind::Destroy, deadline_in(m), {}, {}, {}, {}};
    const blade_status s = d.destroy(inst, r.get(), call.handle());
    channel.done(s, message_of(call, s), output(call.result));
    d.shutdown(inst);
    return 0;
  }
}

}  // namespace

int run_request(Channel &channel, const HelperRequest &req,
                std::optional<Clock::time_point> deadline) {
  const blade_plugin_descriptor &d = inner_descriptor();
  InnerHost host(channel, req.config_json);
  InnerCall init{&channel, sdk::Call::Kind::Other, deadline, {}, {}, {}, {}};
  blade_instance *inst = nullptr;
  blade_status s = d.init(host.api(), host.handle(), init.handle(), &inst);
  if (s != BLADE_STATUS_OK || !inst) {
    channel.done(s == BLADE_STATUS_OK ? BLADE_STATUS_INTERNAL : s, message_of(init, s));
    return 1;
  }
  if (req.op == "create") {
    InnerCall call{&channel, sdk::Call::Kind::Create, deadline, {}, {}, {}, {}};
    InnerRequest r(req, std::nullopt);
    s = d.create(inst, r.get(), call.handle());
    if (s != BLADE_STATUS_OK) {
      channel.done(s, message_of(call, s));
      d.shutdown(inst);
      return 0;
    }
    channel.done(s, "", output(call.result), output(call.restore));
    return hold(channel, req, inst, call.restore);
  }
  InnerRequest r(req, req.restore_json);
  if (req.op == "destroy") {
    InnerCall call{&channel, sdk::Call::Kind::Destroy, deadline, {}, {}, {}, {}};
    s = d.destroy(inst, r.get(), call.handle());
    channel.done(s, message_of(call, s), output(call.result));
  } else {
    InnerCall call{&channel, sdk::Call::Kind::DryRun, deadline, {}, {}, {}, {}};
    s = d.dry_run(inst, r.get(), call.handle());
    channel.done(s, message_of(call, s), nullptr, nullptr, output(call.plan));
  }
  d.shutdown(inst);
  return 0;
}

}  // namespace blade::cri
